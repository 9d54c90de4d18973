// Decides when the leader's current step (a forward pass with its collectives,
// or an idle heartbeat) has run so much longer than the recent ones that a
// rank is probably hung: the adaptive bound is
//
//   bound = min(cap, max(floor, factor × p99 of the last `window` steps))
//
// The floor keeps a slow first step or a big prefill from being a false alarm
// while the history is short or made of fast decode steps; the cap bounds the
// detection time however slow the recent steps were. A step is stalled once
// it has run `bound` (measured at its start) without ending. Every step's
// duration joins the window when it ends, a stalled one included.
//
// Pure bookkeeping over the time points it is given (tests pass a fake
// clock's). Not thread-safe: StepWatchdog guards it with its mutex.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "absl/status/status.h"

namespace tessera {

struct StallOptions {
  std::chrono::milliseconds floor{2000};  // > 0
  std::chrono::milliseconds cap{3000};    // >= floor
  double factor = 10.0;                   // >= 1
  int window = 128;                       // steps in the p99, >= 1
};

// INVALID_ARGUMENT naming the field and its limit.
absl::Status ValidateStallOptions(const StallOptions& options);

class StallDetector {
 public:
  using Clock = std::chrono::steady_clock;

  // `options` must be valid (ValidateStallOptions).
  explicit StallDetector(const StallOptions& options);

  // idle -> in a step that began at `now`; its bound is fixed here. A Begin
  // while in a step restarts it (the unfinished one is not recorded).
  void Begin(Clock::time_point now);
  // in a step -> idle: records and returns the step's duration. Idle: nothing
  // happens, and it returns zero.
  Clock::duration End(Clock::time_point now);

  bool in_step() const { return in_step_; }
  // The bound a step beginning now would get.
  Clock::duration bound() const;
  // The current step's start, bound, and the time it counts as stalled
  // (begin + bound). Only meaningful in a step.
  Clock::time_point begin() const { return begin_; }
  Clock::duration step_bound() const { return step_bound_; }
  Clock::time_point deadline() const { return begin_ + step_bound_; }
  // In a step that has run at least its bound at `now`.
  bool Stalled(Clock::time_point now) const;
  // The 99th percentile (nearest rank) of the recorded steps; zero with none.
  Clock::duration p99() const;
  size_t recorded() const { return filled_; }

 private:
  const StallOptions options_;
  std::vector<Clock::duration> ring_;  // the last `window` durations
  size_t next_ = 0;
  size_t filled_ = 0;
  bool in_step_ = false;
  Clock::time_point begin_;
  Clock::duration step_bound_{};
};

}  // namespace tessera
