#include "worker/hang_detection.h"

#include <chrono>
#include <cmath>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"

ABSL_FLAG(double, stall_floor, 2.0,
          "Hung-rank detection (multi-rank replicas): the least time (s) a step or idle "
          "heartbeat of the leader may take before the replica counts as stalled, whatever the "
          "recent steps took; keeps a slow first step or a big prefill from being a false alarm. "
          "A step is stalled past min(--stall-cap, max(--stall-floor, --stall-factor x p99 of "
          "the last --stall-window steps)); the worker then turns health NOT_SERVING and refuses "
          "new requests (the router takes it out of rotation at once) until the step completes "
          "after all, and still exits 1 once --step-timeout expires");
ABSL_FLAG(double, stall_cap, 3.0,
          "Hung-rank detection: the most time (s) a step may take before the replica counts as "
          "stalled, however slow the recent steps were (>= --stall-floor); with an idle "
          "heartbeat every --idle-heartbeat-ms and the router's poll this bounds the time to "
          "route around a hung rank. 0 = no detection (only --step-timeout)");
ABSL_FLAG(double, stall_factor, 10.0,
          "Hung-rank detection: a step is stalled past this many times the p99 of the recent "
          "steps (within --stall-floor .. --stall-cap); >= 1");
ABSL_FLAG(int, stall_window, 128,
          "Hung-rank detection: how many recent steps (and heartbeats) the p99 is taken over");

namespace tessera {
namespace {

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000)));
}

}  // namespace

absl::StatusOr<std::optional<StallOptions>> StallOptionsFromFlags() {
  const double floor = absl::GetFlag(FLAGS_stall_floor);
  const double cap = absl::GetFlag(FLAGS_stall_cap);
  const double factor = absl::GetFlag(FLAGS_stall_factor);
  const int window = absl::GetFlag(FLAGS_stall_window);
  if (cap == 0) return std::nullopt;
  // Upper bounds keep the milliseconds far from overflow; a day is no detection anyway.
  constexpr double kMaxSeconds = 86400;
  if (!(cap > 0 && cap <= kMaxSeconds)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--stall-cap must be 0 (off) or in (0, ", kMaxSeconds, "] s, got ", cap));
  }
  if (!(floor >= 0.001 && floor <= cap)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--stall-floor must be in [0.001, --stall-cap = ", cap, "] s, got ", floor));
  }
  if (!(factor >= 1 && std::isfinite(factor))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--stall-factor must be a finite number >= 1, got ", factor));
  }
  constexpr int kMaxWindow = 1 << 16;
  if (window < 1 || window > kMaxWindow) {
    return absl::InvalidArgumentError(
        absl::StrCat("--stall-window must be in [1, ", kMaxWindow, "] steps, got ", window));
  }
  StallOptions options;
  options.floor = Millis(floor);
  options.cap = Millis(cap);
  options.factor = factor;
  options.window = window;
  RETURN_IF_ERROR(ValidateStallOptions(options));
  return options;
}

std::unique_ptr<StepWatchdog> MakeStallWatchdog(const std::optional<StallOptions>& options,
                                                int ranks, ServingState& serving) {
  if (!options.has_value() || ranks <= 1) return nullptr;
  return std::make_unique<StepWatchdog>(*options, [&serving](const StepWatchdog::Event& e) {
    const double elapsed = std::chrono::duration<double>(e.elapsed).count();
    const double bound = std::chrono::duration<double>(e.bound).count();
    if (e.stalled) {
      spdlog::warn(
          "replica stalled: a step has run {:.2f} s (bound {:.2f} s, --stall-*), far past the "
          "recent ones; a rank may be hung. NOT_SERVING until it completes; the replica fails "
          "at --step-timeout",
          elapsed, bound);
    } else {
      spdlog::info("the stalled step completed after {:.2f} s; serving again", elapsed);
    }
    serving.SetStalled(e.stalled);
  });
}

}  // namespace tessera
