// tessera: the admin and client CLI of a Tessera cluster. See
// router/cli/cli_help.cc (HelpText) or `tessera --help`.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "common/grpc/library_scope.h"
#include "router/cli/cli_commands.h"

namespace {

// SIGINT / SIGTERM end a --watch through a self-pipe: the handler only
// writes a byte (async-signal-safe); the watch's wait polls the pipe.
int g_stop_pipe[2] = {-1, -1};

extern "C" void OnStopSignal(int /*sig*/) {
  const int saved_errno = errno;
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = write(g_stop_pipe[1], &byte, 1);
  errno = saved_errno;
}

bool InstallStopHandlers() {
  if (pipe2(g_stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return false;
  for (const int sig : {SIGINT, SIGTERM}) {
    struct sigaction sa = {};
    sa.sa_handler = OnStopSignal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, nullptr) != 0) return false;
  }
  return true;
}

// True when a stop signal arrived (now or within `interval`).
bool WaitOrStop(std::chrono::milliseconds interval) {
  pollfd pfd{g_stop_pipe[0], POLLIN, 0};
  const int rc = poll(&pfd, 1, static_cast<int>(interval.count()));
  return rc > 0 || (rc < 0 && errno == EINTR);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  tessera::cli::CliIo io{std::cout, std::cerr, std::cin};
  io.out_is_terminal = isatty(STDOUT_FILENO) == 1;
  // Only --watch waits for signals; other commands keep the default (die).
  const bool watch = std::find(args.begin(), args.end(), "--watch") != args.end();
  if (watch && InstallStopHandlers()) io.wait_or_stop = WaitOrStop;
  const tessera::rpc::GrpcLibraryScope grpc;  // shuts gRPC down on this thread, at the end
  const int code = tessera::cli::RunCli(args, tessera::cli::ProcessEnv(), io);
  std::cout.flush();
  return code;
}
