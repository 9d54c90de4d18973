// tessera-worker's hung-rank detection: its flags (--stall-floor,
// --stall-cap, --stall-factor, --stall-window), their conversion into
// StallOptions, and the leader's StepWatchdog they configure, whose verdicts
// are logged and turn the worker's health. Called once at start-up; not
// thread-safe.
#pragma once

#include <memory>
#include <optional>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "worker/server/serving_state.h"
#include "worker/server/stall_detector.h"
#include "worker/server/step_watchdog.h"

ABSL_DECLARE_FLAG(double, stall_floor);
ABSL_DECLARE_FLAG(double, stall_cap);
ABSL_DECLARE_FLAG(double, stall_factor);
ABSL_DECLARE_FLAG(int, stall_window);

namespace tessera {

// The StallOptions the flags describe; nullopt when --stall-cap is 0
// (detection off). INVALID_ARGUMENT naming the flag and its limit.
absl::StatusOr<std::optional<StallOptions>> StallOptionsFromFlags();

// The leader's watchdog for a replica of `ranks` ranks; nullptr for one rank
// (no rank to hang) or with detection off. It logs each verdict and sets
// `serving`'s stalled flag, which must outlive it.
std::unique_ptr<StepWatchdog> MakeStallWatchdog(const std::optional<StallOptions>& options,
                                                int ranks, ServingState& serving);

}  // namespace tessera
