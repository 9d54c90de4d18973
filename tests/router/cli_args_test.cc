// ParseCliArgs: commands, option placement and spellings, environment
// defaults, usage errors, help.
#include "router/cli/cli_args.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;

EnvLookup Env(std::map<std::string, std::string> vars = {}) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

CliArgs ParseOk(const std::vector<std::string>& args, const EnvLookup& env = Env()) {
  absl::StatusOr<CliArgs> a = ParseCliArgs(args, env);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *a : CliArgs();
}

std::string ParseError(const std::vector<std::string>& args, const EnvLookup& env = Env()) {
  absl::StatusOr<CliArgs> a = ParseCliArgs(args, env);
  EXPECT_FALSE(a.ok()) << "parsed without error";
  if (a.ok()) return "";
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(a.status().message());
}

TEST(CliArgsTest, Defaults) {
  const CliArgs a = ParseOk({"workers"});
  EXPECT_EQ(a.command, Command::kWorkers);
  EXPECT_EQ(a.router, "localhost:50055");
  EXPECT_EQ(a.endpoint, "localhost:50050");
  EXPECT_EQ(a.admin_token, "");
  EXPECT_FALSE(a.timeout_s.has_value());
  EXPECT_DOUBLE_EQ(a.AdminTimeoutSeconds(), 10.0);
  EXPECT_FALSE(a.json);
  EXPECT_FALSE(a.help);
}

TEST(CliArgsTest, OptionsBeforeAndAfterTheCommand) {
  const CliArgs before = ParseOk({"--router", "r:1", "--json", "drain", "w7", "--wait"});
  const CliArgs after = ParseOk({"drain", "--wait", "w7", "--router=r:1", "--json"});
  for (const CliArgs& a : {before, after}) {
    EXPECT_EQ(a.command, Command::kDrain);
    EXPECT_EQ(a.argument, "w7");
    EXPECT_EQ(a.router, "r:1");
    EXPECT_TRUE(a.json);
    EXPECT_TRUE(a.wait);
  }
}

TEST(CliArgsTest, UnderscoresAndEqualsSigns) {
  const CliArgs a = ParseOk(
      {"--admin_token=s3cret", "drain", "x", "--wait", "--wait_timeout", "2.5", "--timeout=0.5"});
  EXPECT_EQ(a.admin_token, "s3cret");
  EXPECT_DOUBLE_EQ(a.wait_timeout_s, 2.5);
  EXPECT_DOUBLE_EQ(*a.timeout_s, 0.5);
  EXPECT_DOUBLE_EQ(a.AdminTimeoutSeconds(), 0.5);
}

TEST(CliArgsTest, EnvironmentDefaultsAndOverrides) {
  auto env = Env({{"TESSERA_ROUTER", "env-router:9"},
                  {"TESSERA_ADMIN_TOKEN", "tok"},
                  {"TESSERA_ENDPOINT", "env-ep:8"},
                  {"TESSERA_API_KEY", "key"}});
  CliArgs a = ParseOk({"status"}, env);
  EXPECT_EQ(a.router, "env-router:9");
  EXPECT_EQ(a.admin_token, "tok");
  EXPECT_EQ(a.endpoint, "env-ep:8");
  EXPECT_EQ(a.api_key, "key");
  a = ParseOk({"status", "--router", "flag:1", "--admin-token", "flagtok"}, env);
  EXPECT_EQ(a.router, "flag:1");
  EXPECT_EQ(a.admin_token, "flagtok");
  // An empty variable counts as unset.
  a = ParseOk({"status"}, Env({{"TESSERA_ROUTER", ""}}));
  EXPECT_EQ(a.router, "localhost:50055");
}

TEST(CliArgsTest, GenerateOptions) {
  const CliArgs a =
      ParseOk({"generate", "--max-tokens", "32", "Once upon a time", "--temperature", "0",
               "--seed=7", "--endpoint", "e:1", "--api-key", "k", "--timeout", "3"});
  EXPECT_EQ(a.command, Command::kGenerate);
  EXPECT_EQ(a.argument, "Once upon a time");
  EXPECT_EQ(a.max_tokens, 32);
  EXPECT_EQ(a.temperature, 0.0f);
  EXPECT_EQ(a.seed, 7u);
  EXPECT_EQ(a.endpoint, "e:1");
  EXPECT_EQ(a.api_key, "k");
  EXPECT_DOUBLE_EQ(*a.timeout_s, 3.0);
  const CliArgs unset = ParseOk({"generate", "hi"});
  EXPECT_FALSE(unset.max_tokens.has_value());
  EXPECT_FALSE(unset.temperature.has_value());
  EXPECT_FALSE(unset.seed.has_value());
  EXPECT_FALSE(unset.timeout_s.has_value());
}

TEST(CliArgsTest, TlsOptionsOfGenerate) {
  const CliArgs a =
      ParseOk({"generate", "hi", "--tls-ca", "ca.pem", "--tls-cert=c.pem", "--tls_key", "k.pem"});
  EXPECT_EQ(a.tls_ca, "ca.pem");
  EXPECT_EQ(a.tls_cert, "c.pem");
  EXPECT_EQ(a.tls_key, "k.pem");
  EXPECT_EQ(ParseOk({"generate", "hi", "--tls-ca", "ca.pem"}).tls_cert, "");
  EXPECT_THAT(ParseError({"generate", "hi", "--tls-cert", "c.pem", "--tls-key", "k.pem"}),
              HasSubstr("--tls-cert needs --tls-ca"));
  EXPECT_THAT(ParseError({"generate", "hi", "--tls-key", "k.pem"}),
              HasSubstr("--tls-key needs --tls-ca"));
  EXPECT_THAT(ParseError({"generate", "hi", "--tls-ca="}),
              HasSubstr("--tls-ca needs the path of a PEM file"));
  EXPECT_THAT(ParseError({"workers", "--tls-ca", "ca.pem"}),
              HasSubstr("--tls-ca is an option of generate, not of workers"));
}

TEST(CliArgsTest, DoubleDashEndsOptions) {
  const CliArgs a = ParseOk({"generate", "--max-tokens", "4", "--", "--not an option"});
  EXPECT_EQ(a.argument, "--not an option");
  EXPECT_EQ(ParseOk({"generate", "-"}).argument, "-");
}

TEST(CliArgsTest, EveryCommandParses) {
  EXPECT_EQ(ParseOk({"workers"}).command, Command::kWorkers);
  EXPECT_EQ(ParseOk({"status"}).command, Command::kStatus);
  EXPECT_EQ(ParseOk({"undrain", "a"}).command, Command::kUndrain);
  EXPECT_EQ(ParseOk({"remove", "a"}).command, Command::kRemove);
  const CliArgs add = ParseOk({"add", "10.0.0.5:50051", "--json"});
  EXPECT_EQ(add.command, Command::kAdd);
  EXPECT_EQ(add.argument, "10.0.0.5:50051");
}

TEST(CliArgsTest, UsageErrors) {
  EXPECT_THAT(ParseError({}), HasSubstr("no command"));
  EXPECT_THAT(ParseError({"frobnicate"}), HasSubstr("unknown command 'frobnicate'"));
  EXPECT_THAT(ParseError({"workers", "--bogus"}), HasSubstr("unknown option --bogus"));
  EXPECT_THAT(ParseError({"workers", "-x"}), HasSubstr("unknown option -x"));
  EXPECT_THAT(ParseError({"workers", "--router"}), HasSubstr("--router needs a value"));
  EXPECT_THAT(ParseError({"workers", "--json=yes"}), HasSubstr("--json takes no value"));
  EXPECT_THAT(ParseError({"workers", "--wait"}), HasSubstr("--wait is an option of drain"));
  EXPECT_THAT(ParseError({"status", "--max-tokens", "3"}),
              HasSubstr("--max-tokens is an option of generate"));
  EXPECT_THAT(ParseError({"drain"}), HasSubstr("drain needs a worker ID"));
  EXPECT_THAT(ParseError({"drain", ""}), HasSubstr("drain needs a worker ID"));
  EXPECT_THAT(ParseError({"add"}), HasSubstr("HOST:PORT"));
  EXPECT_THAT(ParseError({"workers", "extra"}), HasSubstr("unexpected argument 'extra'"));
  EXPECT_THAT(ParseError({"generate", "two", "words"}), HasSubstr("quote the prompt"));
  EXPECT_THAT(ParseError({"generate", "x", "--max-tokens", "0"}), HasSubstr(">= 1"));
  EXPECT_THAT(ParseError({"generate", "x", "--max-tokens", "many"}), HasSubstr("'many'"));
  EXPECT_THAT(ParseError({"generate", "x", "--temperature", "-1"}), HasSubstr(">= 0"));
  EXPECT_THAT(ParseError({"generate", "x", "--seed", "-3"}), HasSubstr("--seed"));
  EXPECT_THAT(ParseError({"generate", "x", "--json"}), HasSubstr("no --json"));
  EXPECT_THAT(ParseError({"status", "--timeout", "0"}), HasSubstr("positive"));
  EXPECT_THAT(ParseError({"status", "--timeout", "nan"}), HasSubstr("positive"));
  EXPECT_THAT(ParseError({"status", "--timeout", "1e300"}), HasSubstr("at most"));
  EXPECT_THAT(ParseError({"drain", "w", "--wait-timeout", "5"}),
              HasSubstr("--wait-timeout needs --wait"));
  EXPECT_THAT(ParseError({"status", "--router="}), HasSubstr("--router needs an address"));
}

TEST(CliArgsTest, Help) {
  CliArgs a = ParseOk({"--help"});
  EXPECT_TRUE(a.help);
  EXPECT_FALSE(a.command.has_value());
  a = ParseOk({"drain", "-h"});  // no ID needed for help
  EXPECT_TRUE(a.help);
  EXPECT_EQ(a.command, Command::kDrain);
  a = ParseOk({"help", "generate"});
  EXPECT_TRUE(a.help);
  EXPECT_EQ(a.command, Command::kGenerate);
  EXPECT_THAT(ParseError({"help", "nope"}), HasSubstr("unknown command"));
}

TEST(CliArgsTest, HelpTextsExplainCommandsOptionsAndExitCodes) {
  const std::string overview = HelpText(std::nullopt);
  for (const char* word :
       {"workers", "status", "drain", "undrain", "add", "remove", "generate", "--router",
        "--admin-token", "--endpoint", "--api-key", "--timeout", "--json", "TESSERA_ROUTER",
        "TESSERA_ADMIN_TOKEN", "TESSERA_ENDPOINT", "TESSERA_API_KEY", "Exit codes"}) {
    EXPECT_THAT(overview, HasSubstr(word));
  }
  for (const char* code : {"  0  ", "  1  ", "  2  ", "  3  ", "  4  ", "  5  ", "  6  "}) {
    EXPECT_THAT(overview, HasSubstr(code));
  }
  EXPECT_THAT(HelpText(Command::kDrain), HasSubstr("--wait-timeout"));
  EXPECT_THAT(HelpText(Command::kGenerate), HasSubstr("--temperature"));
  EXPECT_THAT(HelpText(Command::kWorkers), HasSubstr("PREFIX HIT"));
  for (Command c : {Command::kWorkers, Command::kDrain, Command::kUndrain, Command::kAdd,
                    Command::kRemove, Command::kStatus, Command::kGenerate}) {
    EXPECT_THAT(HelpText(c), HasSubstr("Usage: tessera " + std::string(CommandName(c))));
    EXPECT_THAT(HelpText(c), HasSubstr("Exit codes"));
  }
}

TEST(CliArgsTest, WatchOptions) {
  CliArgs a = ParseOk({"workers", "--watch"});
  EXPECT_TRUE(a.watch);
  EXPECT_EQ(a.interval_s, 2.0);
  EXPECT_FALSE(a.count.has_value());
  a = ParseOk({"status", "--watch", "--interval", "0.5", "--count=3"});
  EXPECT_EQ(a.interval_s, 0.5);
  EXPECT_EQ(a.count, 3);
  EXPECT_THAT(ParseError({"workers", "--count", "2"}), HasSubstr("--count needs --watch"));
  EXPECT_THAT(ParseError({"workers", "--interval", "1"}), HasSubstr("--interval needs --watch"));
  EXPECT_THAT(ParseError({"workers", "--watch", "--count", "0"}), HasSubstr("--count needs"));
  EXPECT_THAT(ParseError({"workers", "--watch", "--interval", "-1"}), HasSubstr("--interval"));
  EXPECT_THAT(ParseError({"drain", "w0", "--watch"}), HasSubstr("not of drain"));
}

}  // namespace
}  // namespace tessera::cli
