#include "common/api/rejection.h"

#include <string>

#include "absl/strings/cord.h"
#include "tessera/v1/error_details.pb.h"

namespace tessera::api {
namespace {

// The absl::Status payload's type URL (the payload is the reason name).
constexpr absl::string_view kPayloadUrl = "type.tessera.ai/tessera.Rejection";
constexpr absl::string_view kErrorInfoUrl = "type.googleapis.com/google.rpc.ErrorInfo";

}  // namespace

absl::string_view RejectionReason(Rejection rejection) {
  switch (rejection) {
    case Rejection::kQueueFull:
      return "WORKER_QUEUE_FULL";
    case Rejection::kDraining:
      return "WORKER_DRAINING";
    case Rejection::kShuttingDown:
      return "WORKER_SHUTTING_DOWN";
    case Rejection::kNotReady:
      return "WORKER_NOT_READY";
  }
  return "UNKNOWN";
}

std::optional<Rejection> ParseRejectionReason(absl::string_view reason) {
  for (Rejection r : {Rejection::kQueueFull, Rejection::kDraining, Rejection::kShuttingDown,
                      Rejection::kNotReady}) {
    if (reason == RejectionReason(r)) return r;
  }
  return std::nullopt;
}

absl::Status WithRejection(absl::Status status, Rejection rejection) {
  status.SetPayload(kPayloadUrl, absl::Cord(RejectionReason(rejection)));
  return status;
}

std::optional<Rejection> RejectionOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  return ParseRejectionReason(std::string(*payload));
}

std::string RejectionDetails(const absl::Status& status, Rejection rejection) {
  v1::ErrorInfo info;
  info.set_reason(std::string(RejectionReason(rejection)));
  info.set_domain(std::string(kErrorDomain));
  v1::RpcStatus rpc;
  rpc.set_code(static_cast<int32_t>(status.code()));
  rpc.set_message(std::string(status.message()));
  google::protobuf::Any* any = rpc.add_details();
  any->set_type_url(std::string(kErrorInfoUrl));
  any->set_value(info.SerializeAsString());
  return rpc.SerializeAsString();
}

std::optional<Rejection> RejectionOf(const grpc::Status& status) {
  if (status.error_details().empty()) return std::nullopt;
  v1::RpcStatus rpc;
  if (!rpc.ParseFromString(status.error_details())) return std::nullopt;
  for (const google::protobuf::Any& any : rpc.details()) {
    if (any.type_url() != kErrorInfoUrl) continue;
    v1::ErrorInfo info;
    if (!info.ParseFromString(any.value()) || info.domain() != kErrorDomain) continue;
    if (std::optional<Rejection> r = ParseRejectionReason(info.reason())) return r;
  }
  return std::nullopt;
}

}  // namespace tessera::api
