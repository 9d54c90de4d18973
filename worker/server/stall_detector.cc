#include "worker/server/stall_detector.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace tessera {

absl::Status ValidateStallOptions(const StallOptions& options) {
  if (options.floor.count() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("stall floor must be > 0 ms, got ", options.floor.count(), " ms"));
  }
  if (options.cap < options.floor) {
    return absl::InvalidArgumentError(absl::StrCat("stall cap (", options.cap.count(),
                                                   " ms) must be >= the floor (",
                                                   options.floor.count(), " ms)"));
  }
  if (!(options.factor >= 1.0) || !std::isfinite(options.factor)) {
    return absl::InvalidArgumentError(
        absl::StrCat("stall factor must be a finite number >= 1, got ", options.factor));
  }
  if (options.window < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("stall window must be >= 1 step, got ", options.window));
  }
  return absl::OkStatus();
}

StallDetector::StallDetector(const StallOptions& options)
    : options_(options), ring_(static_cast<size_t>(std::max(1, options.window))) {}

void StallDetector::Begin(Clock::time_point now) {
  in_step_ = true;
  begin_ = now;
  step_bound_ = bound();
}

StallDetector::Clock::duration StallDetector::End(Clock::time_point now) {
  if (!in_step_) return Clock::duration::zero();
  in_step_ = false;
  const Clock::duration d = std::max(Clock::duration::zero(), now - begin_);
  ring_[next_] = d;
  next_ = (next_ + 1) % ring_.size();
  filled_ = std::min(filled_ + 1, ring_.size());
  return d;
}

StallDetector::Clock::duration StallDetector::p99() const {
  if (filled_ == 0) return Clock::duration::zero();
  std::vector<Clock::duration> sorted(ring_.begin(), ring_.begin() + filled_);
  // Nearest rank: the smallest value with at least 99% of the samples at or below it.
  const size_t rank = static_cast<size_t>(std::ceil(0.99 * static_cast<double>(filled_)));
  const size_t index = std::clamp<size_t>(rank, 1, filled_) - 1;
  std::nth_element(sorted.begin(), sorted.begin() + index, sorted.end());
  return sorted[index];
}

StallDetector::Clock::duration StallDetector::bound() const {
  const Clock::duration floor = options_.floor;
  const Clock::duration cap = options_.cap;
  // In double, so that a huge factor saturates at the cap instead of overflowing.
  const double scaled = static_cast<double>(p99().count()) * options_.factor;
  if (scaled >= static_cast<double>(cap.count())) return cap;
  return std::max(floor, Clock::duration(static_cast<Clock::rep>(scaled)));
}

bool StallDetector::Stalled(Clock::time_point now) const {
  return in_step_ && now - begin_ >= step_bound_;
}

}  // namespace tessera
