#include "router/registry_service.h"

#include <string>
#include <utility>

#include "common/api/field_limits.h"
#include "common/api/grpc_status.h"
#include "common/logging.h"

namespace tessera::router {
namespace {

using api::FinishUnary;
constexpr auto ToGrpc = api::ToGrpcStatus;

}  // namespace

grpc::ServerUnaryReactor* RegistryService::RegisterWorker(grpc::CallbackServerContext* context,
                                                          const v1::RegisterWorkerRequest* request,
                                                          v1::RegisterWorkerResponse* response) {
  if (grpc::Status s = auth_->Check(*context); !s.ok()) return FinishUnary(context, std::move(s));
  if (absl::Status s = api::CheckWorkerAddress("address", request->address()); !s.ok()) {
    return FinishUnary(context, ToGrpc(s));
  }
  if (absl::Status s = api::CheckWorkerId("worker_id", request->worker_id()); !s.ok()) {
    return FinishUnary(context, ToGrpc(s));
  }
  absl::StatusOr<v1::WorkerInfo> info =
      pool_->Register(request->address(), request->worker_id(), request->incarnation());
  if (!info.ok()) {
    return FinishUnary(context, grpc::Status(static_cast<grpc::StatusCode>(info.status().code()),
                                             std::string(info.status().message())));
  }
  spdlog::info("worker {} registered at {}", info->id(), info->address());
  response->set_worker_id(info->id());
  response->set_heartbeat_interval_ms(
      static_cast<int32_t>(absl::ToInt64Milliseconds(heartbeat_interval_)));
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* RegistryService::Heartbeat(grpc::CallbackServerContext* context,
                                                     const v1::HeartbeatRequest* request,
                                                     v1::HeartbeatResponse* response) {
  if (grpc::Status s = auth_->Check(*context); !s.ok()) return FinishUnary(context, std::move(s));
  if (absl::Status s = api::CheckWorkerId("worker_id", request->worker_id()); !s.ok()) {
    return FinishUnary(context, ToGrpc(s));
  }
  response->set_known(pool_->Heartbeat(request->worker_id(), request->incarnation()));
  return FinishUnary(context, grpc::Status::OK);
}

}  // namespace tessera::router
