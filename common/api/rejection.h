// Typed rejection reasons between a worker and the router. A worker that
// refuses a request it could serve later, or that another worker could
// serve now, says why as data, not as words in the message: the reason
// rides on the absl::Status as a payload inside the worker, and on the wire
// as a google.rpc.ErrorInfo (tessera.v1.ErrorInfo, domain "tessera.ai") in
// the grpc::Status's error details (ToGrpcStatus in grpc_status.h carries
// it over). The router retries a rejected request elsewhere and does not
// count it against the worker's health.
//
// Stateless; every function is thread-safe.
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace tessera::api {

enum class Rejection {
  kQueueFull,     // the worker's waiting queue is full (RESOURCE_EXHAUSTED)
  kDraining,      // the worker is draining: it admits nothing new (UNAVAILABLE)
  kShuttingDown,  // the worker is stopping; the request never started (UNAVAILABLE)
  kNotReady,      // the worker is still starting (UNAVAILABLE)
};

// The ErrorInfo reason: "WORKER_QUEUE_FULL", "WORKER_DRAINING",
// "WORKER_SHUTTING_DOWN", "WORKER_NOT_READY".
absl::string_view RejectionReason(Rejection rejection);
// The inverse; nullopt for any other text.
std::optional<Rejection> ParseRejectionReason(absl::string_view reason);

// The ErrorInfo domain of Tessera's reasons.
inline constexpr absl::string_view kErrorDomain = "tessera.ai";

// `status` (not OK) with `rejection` attached as a payload; the code and the
// message are kept.
absl::Status WithRejection(absl::Status status, Rejection rejection);
// The rejection attached to `status`, if any.
std::optional<Rejection> RejectionOf(const absl::Status& status);

// The serialized tessera.v1.RpcStatus (google.rpc.Status) for
// grpc::Status::error_details(): `status`'s code and message, with an
// ErrorInfo of `rejection`.
std::string RejectionDetails(const absl::Status& status, Rejection rejection);
// The rejection in a call's error details; nullopt when there are none,
// they do not parse, or they carry no Tessera ErrorInfo.
std::optional<Rejection> RejectionOf(const grpc::Status& status);

}  // namespace tessera::api
