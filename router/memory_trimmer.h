// Hands the C allocator's free memory back to the system after a burst of
// requests. glibc keeps what a burst freed in its arenas: after 1,000
// concurrent HTTP streams the router's RSS stayed at 57 MiB against a 22 MiB
// baseline, and malloc_trim(0) brought it back to 29 MiB (bench/RESULTS.md).
// Every `interval`, on its own thread, when no request is in flight and some
// ended since the last look, it calls malloc_trim(0) (a no-op elsewhere than
// glibc). Thread-safe; the destructor stops the thread.
#pragma once

#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "router/generate_relay.h"

namespace tessera::router {

class MemoryTrimmer {
 public:
  // `tracker` must outlive the trimmer.
  MemoryTrimmer(const RelayTracker* tracker, absl::Duration interval);
  ~MemoryTrimmer();
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  int64_t trims() const;  // calls made so far (tests)

 private:
  void Run();

  const RelayTracker* const tracker_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t trims_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace tessera::router
