// Per-worker circuit breaker over request outcomes.
//
//   closed    --(failure_threshold consecutive failures)-->  open
//   open      --(open_duration elapsed; next AllowRequest)-> half_open
//   half_open --(the one probe request succeeds)---------->  closed
//   half_open --(the probe fails)------------------------->  open (timer restarts)
//
// While open the worker is out of rotation; in half_open exactly one request
// (the probe) is let through until its outcome is recorded. Time is passed in
// by the caller, so tests need no clock. Not thread-safe: the owner (a
// WorkerPool entry) calls it under its own lock.
#pragma once

#include "absl/time/time.h"

namespace tessera::router {

class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };
  struct Options {
    int failure_threshold = 3;                        // >= 1
    absl::Duration open_duration = absl::Seconds(5);  // > 0
  };

  explicit CircuitBreaker(Options options);

  // True when a request may be sent now. In open state past open_duration
  // this moves to half_open and admits one probe (returns true once; false
  // to later callers until RecordSuccess/RecordFailure).
  bool AllowRequest(absl::Time now);
  // Would AllowRequest(now) return true? Changes nothing (for listing and
  // for filtering candidates before the final choice).
  bool WouldAllow(absl::Time now) const;

  void RecordSuccess();
  void RecordFailure(absl::Time now);
  // The probe admitted by AllowRequest was not sent after all (the caller
  // chose another worker): half_open admits a probe again.
  void ReleaseProbe();

  State state() const { return state_; }
  int consecutive_failures() const { return consecutive_failures_; }

 private:
  Options options_;
  State state_ = State::kClosed;
  int consecutive_failures_ = 0;
  absl::Time opened_at_ = absl::InfinitePast();
  bool probe_in_flight_ = false;
};

const char* CircuitStateName(CircuitBreaker::State state);  // "closed", "open", "half_open"

}  // namespace tessera::router
