#include "router/admin_service.h"

#include <string>
#include <utility>

#include "common/api/field_limits.h"
#include "common/api/grpc_status.h"
#include "common/logging.h"

namespace tessera::router {
namespace {

using api::FinishUnary;
constexpr auto ToGrpc = api::ToGrpcStatus;

grpc::Status NeedId(const std::string& id) {
  if (id.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "id: empty; give a worker id");
  }
  return ToGrpc(api::CheckWorkerId("id", id));
}

}  // namespace

AdminService::AdminService(WorkerPool* pool, const AdmissionController* admission,
                           const RouterCounters* counters, const BearerAuth* auth)
    : pool_(pool), admission_(admission), counters_(counters), auth_(auth) {
  thread_ = std::thread([this] { Loop(); });
}

AdminService::~AdminService() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void AdminService::Post(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
}

void AdminService::Loop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !tasks_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (tasks_.empty()) return;  // stopping, nothing left
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

grpc::ServerUnaryReactor* AdminService::ListWorkers(grpc::CallbackServerContext* context,
                                                    const v1::ListWorkersRequest* /*request*/,
                                                    v1::ListWorkersResponse* response) {
  if (grpc::Status s = auth_->Check(*context); !s.ok()) return FinishUnary(context, std::move(s));
  for (v1::WorkerInfo& w : pool_->List()) *response->add_workers() = std::move(w);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AdminService::AddWorker(grpc::CallbackServerContext* context,
                                                  const v1::AddWorkerRequest* request,
                                                  v1::AddWorkerResponse* response) {
  if (grpc::Status s = auth_->Check(*context); !s.ok()) return FinishUnary(context, std::move(s));
  if (absl::Status s = api::CheckWorkerAddress("address", request->address()); !s.ok()) {
    return FinishUnary(context, ToGrpc(s));
  }
  // The request and response live until the reactor finishes.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Post([this, request, response, reactor] {
    absl::StatusOr<v1::WorkerInfo> info =
        pool_->Add(request->address(), v1::WorkerInfo::SOURCE_ADMIN);
    if (!info.ok()) {
      reactor->Finish(ToGrpc(info.status()));
      return;
    }
    spdlog::info("admin: added worker {} at {}", info->id(), info->address());
    *response->mutable_worker() = std::move(*info);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::RemoveWorker(grpc::CallbackServerContext* context,
                                                     const v1::RemoveWorkerRequest* request,
                                                     v1::RemoveWorkerResponse* /*response*/) {
  if (grpc::Status s = auth_->Check(*context); !s.ok()) return FinishUnary(context, std::move(s));
  if (grpc::Status s = NeedId(request->id()); !s.ok()) return FinishUnary(context, std::move(s));
  if (absl::Status s = pool_->Remove(request->id()); !s.ok()) {
    return FinishUnary(context, ToGrpc(s));
  }
  spdlog::info("admin: removed worker {}", request->id());
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AdminService::DrainWorker(grpc::CallbackServerContext* context,
                                                    const v1::DrainWorkerRequest* request,
                                                    v1::DrainWorkerResponse* response) {
  if (grpc::Status s = auth_->Check(*context); !s.ok()) return FinishUnary(context, std::move(s));
  if (grpc::Status s = NeedId(request->id()); !s.ok()) return FinishUnary(context, std::move(s));
  absl::StatusOr<v1::WorkerInfo> info = pool_->SetDraining(request->id(), true);
  if (!info.ok()) return FinishUnary(context, ToGrpc(info.status()));
  spdlog::info("admin: draining worker {}", request->id());
  *response->mutable_worker() = std::move(*info);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AdminService::UndrainWorker(grpc::CallbackServerContext* context,
                                                      const v1::UndrainWorkerRequest* request,
                                                      v1::UndrainWorkerResponse* response) {
  if (grpc::Status s = auth_->Check(*context); !s.ok()) return FinishUnary(context, std::move(s));
  if (grpc::Status s = NeedId(request->id()); !s.ok()) return FinishUnary(context, std::move(s));
  absl::StatusOr<v1::WorkerInfo> info = pool_->SetDraining(request->id(), false);
  if (!info.ok()) return FinishUnary(context, ToGrpc(info.status()));
  spdlog::info("admin: undrained worker {}", request->id());
  *response->mutable_worker() = std::move(*info);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AdminService::GetClusterStatus(
    grpc::CallbackServerContext* context, const v1::GetClusterStatusRequest* /*request*/,
    v1::ClusterStatus* response) {
  if (grpc::Status s = auth_->Check(*context); !s.ok()) return FinishUnary(context, std::move(s));
  *response = pool_->Status();
  response->set_requests_in_flight(counters_->in_flight.load());
  response->set_requests_total(counters_->total.load());
  response->set_requests_failed(counters_->failed.load());
  response->set_requests_retried(counters_->retried.load());
  response->set_requests_rejected(admission_->rejected());
  return FinishUnary(context, grpc::Status::OK);
}

}  // namespace tessera::router
