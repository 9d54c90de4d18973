// Watches the leader's steps from a thread of its own, so that a step blocked
// in a collective (a follower rank hung, e.g. SIGSTOPped) is noticed long
// before the communicator's --step-timeout ends it. The engine thread brackets
// each step and idle heartbeat with Begin()/End() (or a Scope); the watchdog
// thread waits on a deadline (a mutex condition with a timeout, never a sleep
// loop) for the current step's StallDetector bound. When a step outlives it,
// the watchdog calls `on_change` with stalled = true at once; when that step
// ends after all (a long prefill, a rank that resumed), it calls `on_change`
// with stalled = false. It never ends a step itself: the communicator's
// timeout still fails the replica.
//
// Thread-safe: Begin/End (the engine thread), state() (any thread) and the
// destructor may run concurrently. `on_change` runs on the watchdog thread,
// without the watchdog's lock held, one call at a time, alternating
// stalled = true / false; it must not call Begin/End.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "worker/server/stall_detector.h"

namespace tessera {

class StepWatchdog {
 public:
  using Clock = std::chrono::steady_clock;

  struct Event {
    bool stalled = false;
    // stalled: how long the step had run (>= bound); recovered: its full duration.
    Clock::duration elapsed{};
    Clock::duration bound{};  // the step's bound
  };
  using Callback = std::function<void(const Event&)>;

  // `options` must be valid (ValidateStallOptions). Starts the thread.
  StepWatchdog(const StallOptions& options, Callback on_change);
  ~StepWatchdog();  // Stop()
  StepWatchdog(const StepWatchdog&) = delete;
  StepWatchdog& operator=(const StepWatchdog&) = delete;

  // Engine thread: a step (or heartbeat) begins / ends.
  void Begin();
  void End();

  // Begin() on construction and End() on destruction (or at End()), when
  // `watchdog` is set.
  class Scope {
   public:
    explicit Scope(StepWatchdog* watchdog) : watchdog_(watchdog) {
      if (watchdog_ != nullptr) watchdog_->Begin();
    }
    ~Scope() { End(); }
    // Ends the step now (idempotent).
    void End() {
      if (watchdog_ != nullptr && !ended_) watchdog_->End();
      ended_ = true;
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    StepWatchdog* const watchdog_;
    bool ended_ = false;
  };

  struct State {
    bool stalled = false;       // the last on_change said stalled
    Clock::duration elapsed{};  // stalled: how long the current step has run
    Clock::duration bound{};    // stalled: its bound
  };
  State state() const;

  // Stops and joins the thread; no on_change after it returns. state() still
  // answers (stalled stays as it was). Idempotent.
  void Stop();

 private:
  void Run();

  mutable absl::Mutex mu_;
  StallDetector detector_ ABSL_GUARDED_BY(mu_);
  uint64_t changes_ ABSL_GUARDED_BY(mu_) = 0;  // +1 per Begin/End: wakes the thread
  uint64_t step_ ABSL_GUARDED_BY(mu_) = 0;     // +1 per Begin
  Clock::duration last_duration_ ABSL_GUARDED_BY(mu_){};
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t stalled_step_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::duration stalled_bound_ ABSL_GUARDED_BY(mu_){};
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  const Callback on_change_;
  std::thread thread_;
};

}  // namespace tessera
