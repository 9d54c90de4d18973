// Shared by the AdmissionController tests (admission_test.cc,
// admission_tenants_test.cc): Outcome, which records what an admission
// callback received, and the bound on waits for callbacks. Thread-safe
// (Outcome's callback may run on any thread).
#pragma once

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "router/admission.h"

namespace tessera::router::testing {

inline constexpr absl::Duration kWait = absl::Seconds(10);  // bound on waits for callbacks

// Records the one outcome a callback receives (and how many it received).
struct Outcome {
  AdmissionController::Callback Callback() {
    return [this](absl::Status s) {
      absl::MutexLock lock(&mu);
      ++calls;
      status = std::move(s);
      if (!done.HasBeenNotified()) done.Notify();
    };
  }
  bool decided() {
    absl::MutexLock lock(&mu);
    return calls > 0;
  }
  absl::StatusCode code() {
    absl::MutexLock lock(&mu);
    return status ? status->code() : absl::StatusCode::kUnknown;
  }
  int count() {
    absl::MutexLock lock(&mu);
    return calls;
  }

  absl::Mutex mu;
  int calls = 0;
  std::optional<absl::Status> status;
  absl::Notification done;
};

}  // namespace tessera::router::testing
