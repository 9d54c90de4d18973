// The built `tessera` binary as a script runs it, against the fakes of
// tests/router/cli_test_fixture.h: environment, exit codes, JSON, drain
// --wait, generate's stdout, --watch.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/router/cli_test_fixture.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// --- the binary, as a script would run it ---

TEST_F(CliCommandsTest, BinaryWorkersWithEnvironment) {
  const auto r = RunBinary(
      "workers", absl::StrCat("TESSERA_ROUTER=", router(), " TESSERA_ADMIN_TOKEN=", kAdminToken));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("w-0"));
  EXPECT_THAT(r.out, HasSubstr("PREFIX HIT"));
}

TEST_F(CliCommandsTest, BinaryExitCodes) {
  const std::string opts = absl::StrCat("--router ", router(), " --admin-token ", kAdminToken);
  EXPECT_EQ(RunBinary("status --json " + opts).exit_code, 0);
  EXPECT_EQ(RunBinary("drain " + opts).exit_code, 2);
  EXPECT_EQ(RunBinary("drain nope " + opts).exit_code, 3);
  EXPECT_EQ(RunBinary(absl::StrCat("workers --router ", router(), " --admin-token x")).exit_code,
            4);
  EXPECT_EQ(RunBinary(absl::StrCat("workers --router 127.0.0.1:", ClosedPort())).exit_code, 5);
  EXPECT_EQ(RunBinary("drain stuck-1 --wait --wait-timeout 0.3 " + opts).exit_code, 6);
  const auto help = RunBinary("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Exit codes"));
}

TEST_F(CliCommandsTest, BinaryStatusJsonParses) {
  const auto r = RunBinary(absl::StrCat("--json --router=", router(), " status"),
                           absl::StrCat("TESSERA_ADMIN_TOKEN=", kAdminToken));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["policy"], "prefix");
}

TEST_F(CliCommandsTest, BinaryDrainWait) {
  const auto r = RunBinary(absl::StrCat("drain w-0 --wait --wait-timeout 30 --router ", router(),
                                        " --admin-token ", kAdminToken));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("worker w-0 drained"));
}

TEST_F(CliCommandsTest, BinaryGenerateStdoutIsExactlyTheText) {
  const auto r = RunBinary(absl::StrCat("generate 'Tell me' --endpoint ", endpoint(), " --api-key ",
                                        kApiKey, " --max-tokens 3"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "Once upon a time");                 // not a terminal: no newline added
  EXPECT_THAT(r.out, Not(HasSubstr("finish_reason")));  // that goes to stderr
}

// The binary's --watch: --count frames, each with its "---" line (stdout is
// not a terminal here); SIGTERM ends an unbounded watch with exit 0.
TEST_F(CliCommandsTest, BinaryWatchCountAndSigterm) {
  const std::string opts = absl::StrCat("--router ", router(), " --admin-token ", kAdminToken);
  auto r = RunBinary("workers --watch --interval 0.05 --count 3 " + opts);
  EXPECT_EQ(r.exit_code, 0);
  size_t frames = 0;
  for (size_t at = r.out.find("--- tessera workers"); at != std::string::npos;
       at = r.out.find("--- tessera workers", at + 1)) {
    ++frames;
  }
  EXPECT_EQ(frames, 3u) << r.out;
  r = testing::RunCommand(absl::StrCat("timeout --preserve-status -s TERM 1 ", TESSERA_CLI_BINARY,
                                       " status --watch --interval 0.1 ", opts),
                          60);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("policy: prefix"));
}

}  // namespace
}  // namespace tessera::cli
