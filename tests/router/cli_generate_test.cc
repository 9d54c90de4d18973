// `tessera generate` against the fake Llm service
// (tests/router/cli_test_fixture.h): streamed text, usage, unset sampling
// fields left unset, the prompt from stdin, a refused API key, an error
// finish.
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/cli_test_fixture.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(CliCommandsTest, GenerateStreamsTextAndReportsUsage) {
  const Result r = Run(
      {"generate", "Tell me a story", "--max-tokens", "3", "--temperature", "0", "--seed", "9"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "Once upon a time");
  EXPECT_THAT(r.err, HasSubstr("finish_reason: length, prompt_tokens: 5, completion_tokens: 3, "
                               "cached_prompt_tokens: 2, worker: w-0"));
  const v1::GenerateRequest req = llm_.last_request();
  EXPECT_EQ(req.text(), "Tell me a story");
  EXPECT_TRUE(req.return_text());
  EXPECT_EQ(req.sampling().max_tokens(), 3);
  ASSERT_TRUE(req.sampling().has_temperature());
  EXPECT_EQ(req.sampling().temperature(), 0.0f);
  EXPECT_EQ(req.sampling().seed(), 9u);
}

TEST_F(CliCommandsTest, GenerateLeavesUnsetSamplingUnset) {
  const Result r = Run({"generate", "hi"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const v1::GenerateRequest req = llm_.last_request();
  EXPECT_FALSE(req.sampling().has_max_tokens());
  EXPECT_FALSE(req.sampling().has_temperature());
  EXPECT_FALSE(req.sampling().has_seed());
}

TEST_F(CliCommandsTest, GeneratePromptFromStdin) {
  const Result r = Run({"generate", "-"}, "a prompt\nof two lines\n");
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(llm_.last_request().text(), "a prompt\nof two lines");
}

TEST_F(CliCommandsTest, GenerateApiKeyRefusedExits4) {
  const Result r = Run({"generate", "hi", "--api-key", "bad"});
  EXPECT_EQ(r.code, kExitAuth);
  EXPECT_THAT(r.err, HasSubstr("tessera: generate: PERMISSION_DENIED: wrong token"));
  EXPECT_EQ(r.out, "");
}

TEST_F(CliCommandsTest, GenerateErrorFinishExits1) {
  const Result r = Run({"generate", "fail"});
  EXPECT_EQ(r.code, kExitCallFailed);
  EXPECT_THAT(r.err, HasSubstr("finish_reason: error"));
  EXPECT_THAT(r.err, HasSubstr("the worker crashed"));
}

// A TLS file that cannot be used is a usage error naming its option; no call
// is made.
TEST_F(CliCommandsTest, GenerateTlsFilesThatCannotBeReadExit2) {
  Result r = Run({"generate", "hi", "--tls-ca", "/nonexistent/ca.pem"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("tessera: generate: --tls-ca /nonexistent/ca.pem: cannot open"));
  const std::string not_pem = ::testing::TempDir() + "/cli_not_pem.txt";
  std::ofstream(not_pem) << "hello";
  r = Run({"generate", "hi", "--tls-ca", not_pem});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--tls-ca " + not_pem + ": not a PEM file"));
  r = Run({"generate", "hi", "--tls-ca", not_pem, "--tls-cert", not_pem});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--tls-cert needs --tls-key"));
  EXPECT_EQ(llm_.last_request().text(), "");  // no call reached the service
}

}  // namespace
}  // namespace tessera::cli
