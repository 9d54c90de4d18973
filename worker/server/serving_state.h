// The leader's gRPC health (grpc.health.v1: "", tessera.v1.Worker,
// tessera.v1.Llm) as one function of what it knows, so that no two writers
// race each other: SERVING iff started, not draining, not failed and not
// stalled (StepWatchdog). Draining and failed are for good; stalled comes and
// goes with the watchdog.
//
// Thread-safe: every method may be called from any thread; `apply` runs under
// the state's lock (so its calls keep the order of the changes) and must not
// call back into it.
#pragma once

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tessera {

class ServingState {
 public:
  ServingState() = default;
  ServingState(const ServingState&) = delete;
  ServingState& operator=(const ServingState&) = delete;

  // From now on `apply(serving)` runs on every change of serving(), and once
  // at once with the current value. An empty function detaches (e.g. before
  // the server it writes to goes away).
  void Bind(std::function<void(bool serving)> apply);

  void SetStarted();
  void SetDraining();
  void SetFailed();
  void SetStalled(bool stalled);

  bool serving() const;

 private:
  bool ServingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs apply_ when serving() changed from `before`.
  void ApplyLocked(bool before) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::function<void(bool)> apply_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tessera
