// The drain-signal plumbing of worker/drain_signals.h: a self-pipe written by
// the handler and read by the leader's signal thread.
#include "worker/drain_signals.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace tessera {
namespace {

// The self-pipe: written by OnDrainSignal (the signal number only,
// async-signal-safe), read by the DrainSignalThread.
int g_signal_pipe[2] = {-1, -1};

extern "C" void OnDrainSignal(int sig) {
  const int saved_errno = errno;
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &byte, 1);
  errno = saved_errno;
}

}  // namespace

sigset_t DrainSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  return set;
}

// Followers ignore the signals: they leave on the leader's shutdown plan
// (mpirun still ends a job with SIGKILL).
absl::Status InstallDrainSignalHandlers(bool leader) {
  if (leader && pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", strerror(errno)));
  }
  for (const int sig : {SIGTERM, SIGINT, SIGUSR1}) {
    struct sigaction sa = {};
    sa.sa_handler = leader ? OnDrainSignal : SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, nullptr) != 0) {
      return absl::InternalError(absl::StrCat("sigaction(", sig, "): ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

DrainSignalThread::DrainSignalThread(std::function<void()> on_signal)
    : thread_([this, on_signal = std::move(on_signal)] {
        const sigset_t set = DrainSignals();
        pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
        pollfd pfd{g_signal_pipe[0], POLLIN, 0};
        while (!stop_.load()) {
          if (poll(&pfd, 1, /*timeout_ms=*/200) <= 0) continue;
          unsigned char sig = 0;
          while (read(g_signal_pipe[0], &sig, 1) == 1) {
            spdlog::info("received signal {} ({})", sig, strsignal(sig));
            on_signal();
          }
        }
      }) {}

DrainSignalThread::~DrainSignalThread() { Stop(); }

void DrainSignalThread::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace tessera
