// RouterCluster's `tessera` CLI runs (router_cluster.h, "the CLI"): the
// binary under test, run through the shell with a timeout, its stdout and
// stderr captured, and the admin / client flavours that point it at the
// cluster's router.
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/integration/router_cluster.h"
#include "tests/testing/subprocess.h"

namespace tessera::testing {
namespace {

// Single-quoted for /bin/sh.
std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

std::string CliResult::Describe() const {
  return "$ " + command + "\nexit code " + std::to_string(exit_code) + "\n--- stdout ---\n" + out +
         "--- stderr ---\n" + err;
}

std::string RouterCluster::CliBinary() {
  if (const char* env = std::getenv("TESSERA_CLI_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
  return TESSERA_CLI_BINARY;
}

CliResult RunCliIn(const std::string& dir, const std::vector<std::string>& args, int timeout_s) {
  CliResult r;
  static std::atomic<int> counter{0};
  const std::string err_file = dir + "/cli" + std::to_string(counter.fetch_add(1)) + ".err";
  std::string command = ShellQuote(RouterCluster::CliBinary());
  for (const std::string& a : args) command += " " + ShellQuote(a);
  r.command = command;
  const CommandResult cr = RunCommand(
      "env -u TESSERA_ROUTER -u TESSERA_ADMIN_TOKEN -u TESSERA_ENDPOINT -u TESSERA_API_KEY " +
          command + " 2>" + ShellQuote(err_file),
      timeout_s);
  r.exit_code = cr.exit_code;
  r.out = cr.out;
  r.err = ReadTestFile(err_file);
  return r;
}

CliResult RouterCluster::RunCli(const std::vector<std::string>& args, int timeout_s) const {
  return RunCliIn(dir_, args, timeout_s);
}

CliResult RouterCluster::AdminCli(const std::vector<std::string>& args) const {
  std::vector<std::string> all = {"--router", admin_address_, "--admin-token",
                                  router_options_.admin_token};
  all.insert(all.end(), args.begin(), args.end());
  return RunCli(all);
}

CliResult RouterCluster::ClientCli(const std::vector<std::string>& args) const {
  std::vector<std::string> all = {"--endpoint", client_address_};
  if (!router_options_.api_key.empty()) {
    all.insert(all.end(), {"--api-key", router_options_.api_key});
  }
  all.insert(all.end(), args.begin(), args.end());
  return RunCli(all);
}

}  // namespace tessera::testing
