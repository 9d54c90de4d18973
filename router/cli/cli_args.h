// Command-line parsing of the `tessera` admin/client CLI: the command, its
// positional argument and the options, which may come before or after the
// command (`tessera --json workers` = `tessera workers --json`), written
// `--name value` or `--name=value`, with dashes or underscores. `--` ends the
// options (so a generate TEXT may start with a dash).
//
// Hand-written rather than absl flags: absl flags are process-global (one set
// per binary, awkward per command and in tests) and absl::ParseCommandLine
// exits with status 1 on a bad flag, where the CLI promises 2 for usage errors.
//
// Also the help texts and the exit codes scripts rely on. Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::cli {

// What the process exits with (documented in --help).
enum ExitCode : int {
  kExitOk = 0,
  kExitCallFailed = 1,    // the call failed (any other gRPC status)
  kExitUsage = 2,         // bad command line
  kExitNotFound = 3,      // NOT_FOUND (unknown worker id)
  kExitAuth = 4,          // UNAUTHENTICATED or PERMISSION_DENIED
  kExitUnreachable = 5,   // UNAVAILABLE, or DEADLINE_EXCEEDED before a connection was up
  kExitWaitTimedOut = 6,  // drain --wait gave up
};

enum class Command { kWorkers, kDrain, kUndrain, kAdd, kRemove, kStatus, kGenerate };

// The command's name as typed ("workers", "drain", ...).
absl::string_view CommandName(Command command);

struct CliArgs {
  // Unset only when `help` is set without a command (`tessera --help`).
  std::optional<Command> command;
  // --help / -h / `tessera help [CMD]`: print HelpText(command) and exit 0.
  bool help = false;

  std::string router = "localhost:50055";    // admin address
  std::string admin_token;                   // sent as `authorization: Bearer <token>`
  std::string endpoint = "localhost:50050";  // public (Llm) address, for generate
  std::string api_key;                       // sent as `authorization: Bearer <key>`
  // TLS to --endpoint (generate), PEM file paths: on when tls_ca is set; the
  // client certificate (both or neither) only with it.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // Per-call deadline; unset = 10 s for admin calls and none for generate.
  std::optional<double> timeout_s;
  bool json = false;  // one JSON document on stdout instead of text

  // The positional argument: the worker ID (drain, undrain, remove), the
  // address (add) or the prompt (generate; "-" = read it from stdin).
  std::string argument;

  // workers, status: --watch redraws the output every --interval seconds
  // until SIGINT/SIGTERM, or --count times.
  bool watch = false;
  double interval_s = 2.0;
  std::optional<int64_t> count;

  // drain
  bool wait = false;
  double wait_timeout_s = 300;

  // generate
  std::optional<int32_t> max_tokens;
  std::optional<float> temperature;
  std::optional<uint64_t> seed;

  // The deadline of one admin call, in seconds.
  double AdminTimeoutSeconds() const { return timeout_s.value_or(10.0); }
};

// Looks an environment variable up; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

// EnvLookup over the process environment (std::getenv).
EnvLookup ProcessEnv();

// Parses the arguments after the program name. Defaults come from the
// environment first (TESSERA_ROUTER, TESSERA_ADMIN_TOKEN, TESSERA_ENDPOINT,
// TESSERA_API_KEY; an empty value counts as unset), then the command line.
// Returns INVALID_ARGUMENT, with a message meant for the user, on a usage
// error (unknown command or option, an option the command does not take, a
// missing or extra positional argument, a bad number).
absl::StatusOr<CliArgs> ParseCliArgs(const std::vector<std::string>& args, const EnvLookup& env);

// The help text: the overview (all commands, global options, exit codes)
// when `command` is unset, else that command's usage and options.
std::string HelpText(std::optional<Command> command);

}  // namespace tessera::cli
