// tessera-worker's drain signals (SIGTERM, SIGINT, SIGUSR1; mpirun forwards
// SIGUSR1 to every rank). main() blocks them before MPI and gRPC start
// threads (so those threads inherit the mask), installs the handlers after
// MPI_Init, and the leader reads them on a DrainSignalThread, so no work
// happens in a signal handler. Followers ignore them: they leave on the
// leader's shutdown plan. Thread-safety: InstallDrainSignalHandlers once, from
// main(); a DrainSignalThread is owned by one thread.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <thread>

#include "absl/status/status.h"

namespace tessera {

// SIGTERM, SIGINT and SIGUSR1.
sigset_t DrainSignals();

// Leader: the drain signals are written to a self-pipe (the handler only
// writes the signal number, async-signal-safe, whichever thread the kernel
// picks: also a thread some library started before main() with the signals
// unblocked). Followers: ignored. INTERNAL when pipe2 or sigaction fails.
absl::Status InstallDrainSignalHandlers(bool leader);

// The leader's signal thread: unblocks the drain signals for itself, reads
// the self-pipe (InstallDrainSignalHandlers(true) first) and, for each signal,
// logs it and calls `on_signal` on this thread.
class DrainSignalThread {
 public:
  explicit DrainSignalThread(std::function<void()> on_signal);
  DrainSignalThread(const DrainSignalThread&) = delete;
  DrainSignalThread& operator=(const DrainSignalThread&) = delete;
  ~DrainSignalThread();  // Stop()

  // Ends the thread (within its 200 ms poll) and joins it. Idempotent.
  void Stop();

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tessera
