#include "worker/server/serving_state.h"

#include <utility>

namespace tessera {

void ServingState::Bind(std::function<void(bool serving)> apply) {
  absl::MutexLock lock(&mu_);
  apply_ = std::move(apply);
  if (apply_) apply_(ServingLocked());
}

void ServingState::SetStarted() {
  absl::MutexLock lock(&mu_);
  const bool before = ServingLocked();
  started_ = true;
  ApplyLocked(before);
}

void ServingState::SetDraining() {
  absl::MutexLock lock(&mu_);
  const bool before = ServingLocked();
  draining_ = true;
  ApplyLocked(before);
}

void ServingState::SetFailed() {
  absl::MutexLock lock(&mu_);
  const bool before = ServingLocked();
  failed_ = true;
  ApplyLocked(before);
}

void ServingState::SetStalled(bool stalled) {
  absl::MutexLock lock(&mu_);
  const bool before = ServingLocked();
  stalled_ = stalled;
  ApplyLocked(before);
}

bool ServingState::serving() const {
  absl::MutexLock lock(&mu_);
  return ServingLocked();
}

bool ServingState::ServingLocked() const { return started_ && !draining_ && !failed_ && !stalled_; }

void ServingState::ApplyLocked(bool before) {
  if (apply_ && ServingLocked() != before) apply_(ServingLocked());
}

}  // namespace tessera
