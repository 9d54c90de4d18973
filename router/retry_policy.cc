#include "router/retry_policy.h"

#include <algorithm>

#include "common/api/rejection.h"

namespace tessera::router {

bool IsClientError(grpc::StatusCode code) {
  return code == grpc::StatusCode::INVALID_ARGUMENT || code == grpc::StatusCode::NOT_FOUND ||
         code == grpc::StatusCode::OUT_OF_RANGE || code == grpc::StatusCode::FAILED_PRECONDITION ||
         code == grpc::StatusCode::ALREADY_EXISTS;
}

AttemptEnd ClassifyAttemptEnd(const AttemptFacts& f) {
  if (f.status.ok() && f.saw_final) return AttemptEnd::kCompleted;
  if (f.client_cancelled ||
      (f.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && f.client_deadline_passed)) {
    return AttemptEnd::kCancelled;
  }
  if (f.status.ok()) return AttemptEnd::kWorkerError;  // ended without a final message
  if (IsClientError(f.status.error_code())) return AttemptEnd::kClientError;
  if (f.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
      api::RejectionOf(f.status).has_value()) {
    return AttemptEnd::kRejected;
  }
  return AttemptEnd::kWorkerError;
}

absl::Duration BackoffPolicy::Delay(int attempts_made, double jitter) const {
  absl::Duration d = base;
  for (int i = 1; i < attempts_made && d < max; ++i) d *= 2;
  return std::min(d, max) * jitter;
}

}  // namespace tessera::router
