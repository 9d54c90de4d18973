#include "router/circuit_breaker.h"

#include "common/check.h"

namespace tessera::router {

CircuitBreaker::CircuitBreaker(Options options) : options_(options) {
  TESSERA_CHECK(options_.failure_threshold >= 1, "failure_threshold must be >= 1, got ",
                options_.failure_threshold);
  TESSERA_CHECK(options_.open_duration > absl::ZeroDuration(), "open_duration must be > 0, got ",
                absl::FormatDuration(options_.open_duration));
}

bool CircuitBreaker::AllowRequest(absl::Time now) {
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      if (now - opened_at_ < options_.open_duration) return false;
      // open -> half_open: this caller carries the probe.
      state_ = State::kHalfOpen;
      probe_in_flight_ = true;
      return true;
    case State::kHalfOpen:
      if (probe_in_flight_) return false;
      probe_in_flight_ = true;
      return true;
  }
  return false;  // unreachable: every state is handled above
}

bool CircuitBreaker::WouldAllow(absl::Time now) const {
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      return now - opened_at_ >= options_.open_duration;
    case State::kHalfOpen:
      return !probe_in_flight_;
  }
  return false;  // unreachable
}

void CircuitBreaker::RecordSuccess() {
  switch (state_) {
    case State::kClosed:
      consecutive_failures_ = 0;
      return;
    case State::kOpen:
      // A late success of a request sent before the breaker opened: only the
      // probe may close it, so the breaker stays open (and its timer runs on).
      return;
    case State::kHalfOpen:
      // half_open -> closed. (A late success of an older request counts too:
      // it is equally good evidence that the worker serves.)
      state_ = State::kClosed;
      consecutive_failures_ = 0;
      probe_in_flight_ = false;
      return;
  }
}

void CircuitBreaker::RecordFailure(absl::Time now) {
  ++consecutive_failures_;
  switch (state_) {
    case State::kClosed:
      if (consecutive_failures_ >= options_.failure_threshold) {
        // closed -> open
        state_ = State::kOpen;
        opened_at_ = now;
      }
      return;
    case State::kOpen:
      // A late failure of a request sent before the breaker opened: counted,
      // but the open timer is not restarted.
      return;
    case State::kHalfOpen:
      // half_open -> open: the timer restarts.
      state_ = State::kOpen;
      opened_at_ = now;
      probe_in_flight_ = false;
      return;
  }
}

void CircuitBreaker::ReleaseProbe() {
  if (state_ == State::kHalfOpen) probe_in_flight_ = false;
}

const char* CircuitStateName(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

}  // namespace tessera::router
