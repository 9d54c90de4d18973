#include "worker/server/step_watchdog.h"

#include <optional>
#include <utility>

#include "absl/time/time.h"

namespace tessera {

StepWatchdog::StepWatchdog(const StallOptions& options, Callback on_change)
    : detector_(options), on_change_(std::move(on_change)) {
  thread_ = std::thread([this] { Run(); });
}

StepWatchdog::~StepWatchdog() { Stop(); }

void StepWatchdog::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void StepWatchdog::Begin() {
  absl::MutexLock lock(&mu_);
  detector_.Begin(Clock::now());
  ++step_;
  ++changes_;
}

void StepWatchdog::End() {
  absl::MutexLock lock(&mu_);
  last_duration_ = detector_.End(Clock::now());
  ++changes_;
}

StepWatchdog::State StepWatchdog::state() const {
  absl::MutexLock lock(&mu_);
  State s;
  s.stalled = stalled_;
  if (stalled_) {
    s.elapsed = detector_.in_step() && step_ == stalled_step_ ? Clock::now() - detector_.begin()
                                                              : last_duration_;
    s.bound = stalled_bound_;
  }
  return s;
}

void StepWatchdog::Run() {
  mu_.Lock();
  while (!stop_) {
    const uint64_t seen = changes_;
    auto changed = [this, seen]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || changes_ != seen; };
    std::optional<Event> event;
    if (stalled_ && !(detector_.in_step() && step_ == stalled_step_)) {
      // The stalled step ended after all (a later one may already run).
      stalled_ = false;
      event = Event{false, last_duration_, stalled_bound_};
    } else if (!stalled_ && detector_.in_step()) {
      const Clock::time_point now = Clock::now();
      if (detector_.Stalled(now)) {
        stalled_ = true;
        stalled_step_ = step_;
        stalled_bound_ = detector_.step_bound();
        event = Event{true, now - detector_.begin(), detector_.step_bound()};
      } else {
        // Woken by the deadline, or earlier by the step's end (or a stop).
        mu_.AwaitWithTimeout(absl::Condition(&changed),
                             absl::FromChrono(detector_.deadline() - now));
        continue;
      }
    } else {
      mu_.Await(absl::Condition(&changed));
      continue;
    }
    // Outside the lock: Begin/End never wait for a callback. Only this
    // thread calls it, so the events keep their order.
    mu_.Unlock();
    on_change_(*event);
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace tessera
