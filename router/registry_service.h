// tessera.v1.Registry on the router's client port: workers started with
// `tessera-worker --router ADDR` register (WorkerPool::Register: their own id,
// bound to their address and incarnation; limited in count and rate) and
// heartbeat (WorkerPool::Heartbeat, matched on id and incarnation). Every
// call needs the cluster credential (api::ClusterAuth: --cluster-token, mTLS;
// without either, calls from this machine only); the client API key does not
// open it.
//
// Thread-safe: handlers only call the pool's thread-safe methods.
#pragma once

#include "absl/time/time.h"
#include "common/api/cluster_auth.h"
#include "grpcpp/grpcpp.h"
#include "router/worker_pool.h"
#include "tessera/v1/admin.grpc.pb.h"

namespace tessera::router {

class RegistryService final : public v1::Registry::CallbackService {
 public:
  // `heartbeat_interval` is what RegisterWorker tells workers to use; keep it
  // well under the pool's registration_ttl.
  RegistryService(WorkerPool* pool, const api::ClusterAuth* auth, absl::Duration heartbeat_interval)
      : pool_(pool), auth_(auth), heartbeat_interval_(heartbeat_interval) {}

  // INVALID_ARGUMENT for an empty or malformed address or incarnation;
  // ALREADY_EXISTS for an id registered elsewhere by another process that
  // passes its health checks; RESOURCE_EXHAUSTED past the registration
  // limits; otherwise the id the router knows the worker by (an already
  // registered worker keeps its id).
  grpc::ServerUnaryReactor* RegisterWorker(grpc::CallbackServerContext* context,
                                           const v1::RegisterWorkerRequest* request,
                                           v1::RegisterWorkerResponse* response) override;
  // known = false: the router does not know this id, or knows it from
  // another incarnation (register again).
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const v1::HeartbeatRequest* request,
                                      v1::HeartbeatResponse* response) override;

 private:
  WorkerPool* const pool_;
  const api::ClusterAuth* const auth_;
  const absl::Duration heartbeat_interval_;
};

}  // namespace tessera::router
