// The tessera CLI's admin commands against the fake Admin service
// (tests/router/cli_test_fixture.h): output, tokens sent and refused, exit
// codes (3 unknown id, 4 auth, 5 unreachable, 6 drain --wait timeout) and
// drain --wait. `generate`: cli_generate_test.cc; the built binary:
// cli_binary_test.cc.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/cli_test_fixture.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(CliCommandsTest, WorkersTableSendsTheToken) {
  const Result r = Run({"workers"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ID"));
  EXPECT_THAT(r.out, HasSubstr("IN-FLIGHT"));
  EXPECT_THAT(r.out, HasSubstr("w-0"));
  EXPECT_THAT(r.out, HasSubstr("64/256 (25%)"));
  EXPECT_THAT(r.out, HasSubstr("50%"));
  EXPECT_EQ(admin_.last_token(), kAdminToken);
}

TEST_F(CliCommandsTest, WorkersJson) {
  const Result r = Run({"--json", "workers"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["workers"].size(), 2u);
  EXPECT_EQ(j["workers"][1]["id"], "w-0");
  EXPECT_EQ(j["workers"][1]["in_flight"], 3);
}

TEST_F(CliCommandsTest, MissingOrWrongTokenExits4) {
  Result r = Run({"workers", "--admin-token", "wrong"});
  EXPECT_EQ(r.code, kExitAuth);
  EXPECT_THAT(r.err, HasSubstr("tessera: workers: PERMISSION_DENIED: wrong token"));
  EXPECT_EQ(admin_.last_token(), "wrong");
  // No token at all: the env var is empty, so nothing is sent.
  const std::vector<std::string> no_token = {"status"};
  std::ostringstream out, err;
  std::istringstream in;
  CliIo io{out, err, in};
  const std::string addr = router();
  const int code = RunCli(
      no_token,
      [&addr](const char* name) -> std::optional<std::string> {
        if (std::string(name) == "TESSERA_ROUTER") return addr;
        return std::nullopt;
      },
      io);
  EXPECT_EQ(code, kExitAuth);
  EXPECT_THAT(err.str(), HasSubstr("tessera: status: UNAUTHENTICATED: missing token"));
  EXPECT_EQ(admin_.last_token(), "");
}

TEST_F(CliCommandsTest, StatusLinesAndJson) {
  Result r = Run({"status"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("policy: prefix\n"));
  EXPECT_THAT(r.out, HasSubstr("workers: 2\n"));
  EXPECT_THAT(r.out, HasSubstr("requests_total: 42\n"));
  r = Run({"status", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["policy"], "prefix");
  EXPECT_EQ(j["requests_total"], 42);
}

TEST_F(CliCommandsTest, DrainUndrainAddRemove) {
  Result r = Run({"drain", "w-0"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("draining worker w-0 (3 in flight)"));
  r = Run({"undrain", "w-0", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["worker"]["state"], "healthy");
  r = Run({"add", "10.0.0.9:50051"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("added worker w-2 at 10.0.0.9:50051 (healthy)"));
  r = Run({"--json", "add", "10.0.0.10:50051"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["worker"]["source"], "admin");
  r = Run({"remove", "w-2"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "removed worker w-2\n");
  r = Run({"workers", "--json"});
  ASSERT_EQ(r.code, kExitOk);
  EXPECT_EQ(nlohmann::json::parse(r.out)["workers"].size(), 3u);  // w-0, w-3, stuck-1
}

TEST_F(CliCommandsTest, UnknownIdExits3) {
  for (const char* command : {"drain", "undrain", "remove"}) {
    const Result r = Run({command, "nope"});
    EXPECT_EQ(r.code, kExitNotFound) << command;
    EXPECT_THAT(r.err,
                HasSubstr(absl::StrCat("tessera: ", command, ": NOT_FOUND: no worker nope")));
  }
}

TEST_F(CliCommandsTest, OtherFailuresExit1) {
  const Result r = Run({"add", "no-port"});
  EXPECT_EQ(r.code, kExitCallFailed);
  EXPECT_THAT(r.err, HasSubstr("tessera: add: INVALID_ARGUMENT: address needs a port"));
}

TEST_F(CliCommandsTest, UsageErrorsExit2) {
  Result r = Run({"drain"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("drain needs a worker ID"));
  EXPECT_THAT(r.err, HasSubstr("tessera --help"));
  r = Run({"bogus"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(admin_.list_calls(), 0);
}

TEST_F(CliCommandsTest, HelpExits0) {
  Result r = Run({"--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("Exit codes"));
  r = Run({"generate", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("Usage: tessera generate"));
}

TEST_F(CliCommandsTest, UnreachableRouterExits5) {
  const std::string closed = absl::StrCat("127.0.0.1:", ClosedPort());
  Result r = Run({"workers", "--router", closed, "--timeout", "5"});
  EXPECT_EQ(r.code, kExitUnreachable);
  EXPECT_THAT(r.err, HasSubstr("tessera: workers: UNAVAILABLE"));
  EXPECT_THAT(r.err, HasSubstr(closed));
  r = Run({"generate", "hi", "--endpoint", closed});
  EXPECT_EQ(r.code, kExitUnreachable);
}

TEST_F(CliCommandsTest, DeadlineAfterConnectingExits1) {
  admin_.set_hang_status(true);
  const Result r = Run({"status", "--timeout", "0.3"});
  EXPECT_EQ(r.code, kExitCallFailed);
  EXPECT_THAT(r.err, HasSubstr("tessera: status: DEADLINE_EXCEEDED"));
}

TEST_F(CliCommandsTest, ExitCodeForStatus) {
  using grpc::StatusCode;
  auto code = [](StatusCode c, bool connected) {
    return ExitCodeForStatus(grpc::Status(c, ""), connected);
  };
  EXPECT_EQ(code(StatusCode::OK, true), 0);
  EXPECT_EQ(code(StatusCode::INTERNAL, true), 1);
  EXPECT_EQ(code(StatusCode::NOT_FOUND, true), 3);
  EXPECT_EQ(code(StatusCode::UNAUTHENTICATED, true), 4);
  EXPECT_EQ(code(StatusCode::PERMISSION_DENIED, true), 4);
  EXPECT_EQ(code(StatusCode::UNAVAILABLE, true), 5);
  EXPECT_EQ(code(StatusCode::DEADLINE_EXCEEDED, false), 5);
  EXPECT_EQ(code(StatusCode::DEADLINE_EXCEEDED, true), 1);
}

TEST_F(CliCommandsTest, DrainWaitCompletes) {
  const Result r = Run({"drain", "w-0", "--wait", "--wait-timeout", "30"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("worker w-0 drained"));
  EXPECT_THAT(r.err, HasSubstr("waiting: worker w-0: 3 in flight, 2 running, 1 waiting"));
  // 3 in flight, one fewer per poll: the fourth poll sees 0.
  EXPECT_EQ(admin_.list_calls(), 4);
}

TEST_F(CliCommandsTest, DrainWaitJson) {
  const Result r = Run({"drain", "w-0", "--wait", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["drained"], true);
  EXPECT_EQ(j["worker"]["state"], "draining");
  EXPECT_EQ(j["worker"]["in_flight"], 0);
}

TEST_F(CliCommandsTest, DrainWaitTimesOutExits6) {
  const auto start = std::chrono::steady_clock::now();
  const Result r = Run({"drain", "stuck-1", "--wait", "--wait-timeout", "0.3", "--json"});
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.code, kExitWaitTimedOut);
  EXPECT_THAT(r.err, HasSubstr("--wait timed out"));
  EXPECT_THAT(r.err, HasSubstr("3 in flight"));
  EXPECT_EQ(nlohmann::json::parse(r.out)["drained"], false);
  EXPECT_GE(took, 0.3);
  EXPECT_LT(took, 10.0);
  EXPECT_GE(admin_.list_calls(), 2);
}

}  // namespace
}  // namespace tessera::cli
