#include "common/api/grpc_status.h"

#include <utility>

#include "common/api/rejection.h"

namespace tessera::api {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  const auto code = static_cast<grpc::StatusCode>(status.code());
  if (std::optional<Rejection> rejection = RejectionOf(status)) {
    return grpc::Status(code, std::string(status.message()), RejectionDetails(status, *rejection));
  }
  return grpc::Status(code, std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  absl::Status s(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  if (std::optional<Rejection> rejection = RejectionOf(status)) {
    return WithRejection(std::move(s), *rejection);
  }
  return s;
}

std::string StatusCodeName(grpc::StatusCode code) {
  // gRPC's and absl's status codes share their numbers and names.
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

}  // namespace tessera::api
