// tessera.v1.Admin on the router's admin port (--admin-host/--admin-port):
// list, add, remove, drain and undrain workers, and the cluster status. Every
// call needs `authorization: Bearer <--admin-token>` when a token is set
// (UNAUTHENTICATED otherwise); without a token the router only serves this
// on a loopback host (checked at start-up, RouterServer).
//
// Errors: NOT_FOUND for an unknown worker id, INVALID_ARGUMENT for a bad
// address, ALREADY_EXISTS for a known address or id (WorkerPool's statuses).
//
// Thread-safe: handlers call only thread-safe pool / admission methods and
// atomic counters. AddWorker may wait up to the pool's health_timeout for the
// new worker's id, so it runs on the service's own thread, never on gRPC's.
#pragma once

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "router/admission.h"
#include "router/auth.h"
#include "router/generate_relay.h"
#include "router/worker_pool.h"
#include "tessera/v1/admin.grpc.pb.h"

namespace tessera::router {

class AdminService final : public v1::Admin::CallbackService {
 public:
  AdminService(WorkerPool* pool, const AdmissionController* admission,
               const RouterCounters* counters, const BearerAuth* auth);
  // Runs the AddWorker calls still queued, then joins the thread. Destroy
  // after the server has shut down.
  ~AdminService();
  AdminService(const AdminService&) = delete;
  AdminService& operator=(const AdminService&) = delete;

  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* context,
                                        const v1::ListWorkersRequest* request,
                                        v1::ListWorkersResponse* response) override;
  // Adds a worker with source ADMIN; its id is the worker's own (GetLoad) or
  // its address.
  grpc::ServerUnaryReactor* AddWorker(grpc::CallbackServerContext* context,
                                      const v1::AddWorkerRequest* request,
                                      v1::AddWorkerResponse* response) override;
  grpc::ServerUnaryReactor* RemoveWorker(grpc::CallbackServerContext* context,
                                         const v1::RemoveWorkerRequest* request,
                                         v1::RemoveWorkerResponse* response) override;
  grpc::ServerUnaryReactor* DrainWorker(grpc::CallbackServerContext* context,
                                        const v1::DrainWorkerRequest* request,
                                        v1::DrainWorkerResponse* response) override;
  grpc::ServerUnaryReactor* UndrainWorker(grpc::CallbackServerContext* context,
                                          const v1::UndrainWorkerRequest* request,
                                          v1::UndrainWorkerResponse* response) override;
  // WorkerPool::Status() plus the router's request counters.
  grpc::ServerUnaryReactor* GetClusterStatus(grpc::CallbackServerContext* context,
                                             const v1::GetClusterStatusRequest* request,
                                             v1::ClusterStatus* response) override;

 private:
  // Runs `task` on the service's thread (blocking pool calls).
  void Post(std::function<void()> task);
  void Loop();

  WorkerPool* const pool_;
  const AdmissionController* const admission_;
  const RouterCounters* const counters_;
  const BearerAuth* const auth_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tessera::router
