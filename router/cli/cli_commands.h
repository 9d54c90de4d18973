// The `tessera` CLI end to end: parse the arguments, run the command against
// tessera-router's Admin service (--router) or public Llm service
// (--endpoint), print the result, return the exit code (cli_args.h's
// ExitCode). main() is a thin wrapper; tests call RunCli in-process against
// fake services.
//
// Thread-compatible: one RunCli at a time per CliIo; calls block on gRPC.
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "router/cli/cli_args.h"

namespace tessera::cli {

struct CliIo {
  std::ostream& out;  // results; generate's text
  std::ostream& err;  // errors, progress, generate's finish line
  std::istream& in;   // generate - reads the prompt here
  // True when `out` is a terminal: generate then ends its text with a
  // newline if the text did not.
  bool out_is_terminal = false;
  // How often drain --wait polls the worker list.
  std::chrono::milliseconds wait_poll_interval{200};
  // JSON documents on one line (each --watch frame is one line).
  bool compact_json = false;
  // --watch: waits up to `interval`; true when the watch should stop
  // (SIGINT/SIGTERM in the binary). Empty: a plain sleep, never stopping.
  std::function<bool(std::chrono::milliseconds interval)> wait_or_stop = nullptr;
};

// Runs `tessera ARGS...` (args exclude the program name) and returns the exit
// code. Never throws; every failure is a message on io.err and a code.
int RunCli(const std::vector<std::string>& args, const EnvLookup& env, CliIo& io);

// The exit code for a failed call's status: NOT_FOUND 3, UNAUTHENTICATED /
// PERMISSION_DENIED 4, UNAVAILABLE 5, DEADLINE_EXCEEDED 5 when the channel
// never got a connection (`connected` false) and 1 otherwise, anything else 1.
int ExitCodeForStatus(const grpc::Status& status, bool connected);

}  // namespace tessera::cli
