#include "router/memory_trimmer.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace tessera::router {

MemoryTrimmer::MemoryTrimmer(const RelayTracker* tracker, absl::Duration interval)
    : tracker_(tracker), interval_(interval), thread_([this] { Run(); }) {}

MemoryTrimmer::~MemoryTrimmer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

int64_t MemoryTrimmer::trims() const {
  absl::MutexLock lock(&mu_);
  return trims_;
}

void MemoryTrimmer::Run() {
  int64_t seen = tracker_->ended();
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_)) {
    const int64_t ended = tracker_->ended();
    if (ended == seen || tracker_->live() != 0) continue;
    seen = ended;
    mu_.Unlock();
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    mu_.Lock();
    ++trims_;
  }
}

}  // namespace tessera::router
