// A whole tessera-router in-process: the worker pool (with its placement
// policy), admission control, static / dns:/// workers, and two gRPC servers:
//   client port (--host:--port)              tessera.v1.Llm, tessera.v1.Registry
//   admin port  (--admin-host:--admin-port)  tessera.v1.Admin
// both with grpc.health.v1 (SERVING once both listen) and server reflection.
// Registry takes only callers with the cluster credential
// (api::ClusterAuth); the router's channels to workers send it.
// Used by router/main.cc and by the tests (ports 0 = free ports).
//
// Thread-safe: Start, Shutdown and the destructor from one owner thread;
// the accessors from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/api/cluster_auth.h"
#include "common/http/http_server.h"
#include "grpcpp/grpcpp.h"
#include "router/admission.h"
#include "router/dns_discovery.h"
#include "router/generate_relay.h"
#include "router/memory_trimmer.h"
#include "router/policy.h"
#include "router/request_log.h"
#include "router/router_metrics.h"
#include "router/tenant_config.h"
#include "router/tenants.h"
#include "router/worker_pool.h"

namespace tessera::router {

struct RouterServerOptions {
  std::string host = "0.0.0.0";
  int port = 50050;  // 0 = a free port (see RouterServer::port())
  std::string admin_host = "127.0.0.1";
  int admin_port = 50055;   // 0 = a free port
  std::string admin_token;  // empty: Admin is open, allowed on loopback hosts only
  // The OpenAI-compatible HTTP API (router/openai/http_api.h).
  std::string http_host = "0.0.0.0";
  int http_port = 0;                  // 0 = a free port (see http_port()); -1 = no HTTP API
  size_t max_request_body = 8 << 20;  // bytes; larger bodies get 413
  int http_threads = 2;
  std::string api_key;  // empty: Llm is open
  // The cluster credential (--cluster-token, --tls-*): Registry needs it, and
  // the router sends it on every call to a worker. With mTLS the client port
  // serves TLS (a client certificate is asked for, and needed for Registry).
  api::ClusterCredentials cluster;
  // Tenants (router/tenant_config.h): the --api-keys file's tenants (a key
  // is then required on Llm and the HTTP API: one of these or api_key),
  // --user-tenants, and the default tenant's weight and limits (also those of
  // each user-derived tenant).
  std::vector<KeyedTenant> api_keys;
  bool user_tenants = false;
  TenantPolicy default_tenant;
  // host:port entries (source STATIC) and dns:///NAME:PORT entries (DNS).
  std::vector<std::string> workers;
  absl::Duration dns_refresh = absl::Seconds(5);
  Resolver resolver;              // for dns:/// entries; empty = SystemResolver()
  std::string policy = "prefix";  // prefix, least_load, round_robin
  PolicyOptions policy_options;
  AdmissionController::Options admission;
  RelayOptions relay;
  // health_interval, health_timeout, unhealthy_threshold, breaker, ...;
  // watch_kv_events is set from the policy (only prefix needs it).
  WorkerPoolOptions pool;
  absl::Duration heartbeat_interval = absl::Seconds(1);  // told to registering workers
  std::string request_id_prefix;                         // of the random ids; empty: "router"
  // --served-model-name: what clients may call the model (the first is
  // reported); empty: the workers' model id.
  std::vector<std::string> served_model_names;
  // The request log (router/request_log.h): one line per finished request
  // to `request_log_out` (stdout when null).
  bool request_log = false;
  RequestLogFormat log_format = RequestLogFormat::kText;
  std::FILE* request_log_out = nullptr;
};

class RouterServer {
 public:
  // Validates the options, builds the pool (adding the static workers; each
  // may take up to health_timeout to report its id), starts dns:///
  // discovery, then both servers. INVALID_ARGUMENT for bad options (a bad
  // policy or worker address; an admin host that is not loopback without an
  // admin token), UNAVAILABLE when a port cannot be bound.
  static absl::StatusOr<std::unique_ptr<RouterServer>> Start(RouterServerOptions options);

  ~RouterServer();  // Shutdown(absl::ZeroDuration()) unless already shut down
  RouterServer(const RouterServer&) = delete;
  RouterServer& operator=(const RouterServer&) = delete;

  int port() const { return port_; }              // the bound client port
  int admin_port() const { return admin_port_; }  // the bound admin port
  int http_port() const { return http_port_; }    // the bound HTTP port (-1: none)
  WorkerPool& pool() { return *pool_; }
  const RouterCounters& counters() const { return counters_; }
  const AdmissionController& admission() const { return *admission_; }
  // The router's metrics (also served at GET /metrics on the HTTP port).
  RouterMetrics& metrics() { return *metrics_; }
  Tenants& tenants();

  // Health NOT_SERVING, no new calls; in-flight streams may finish for up to
  // `grace`, then are cancelled (their upstream calls too). Returns once
  // every call has ended. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  RouterServer() = default;

  RouterServerOptions options_;
  std::unique_ptr<WorkerPool> pool_;
  std::vector<std::unique_ptr<DnsDiscovery>> discovery_;
  std::unique_ptr<AdmissionController> admission_;
  RouterCounters counters_;
  RelayTracker tracker_;
  std::unique_ptr<MemoryTrimmer> trimmer_;  // after tracker_: stops before it goes
  std::unique_ptr<RequestLog> request_log_;
  std::unique_ptr<RouterMetrics> metrics_;
  struct Services;
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> admin_server_;
  std::unique_ptr<http::Server> http_server_;
  int port_ = 0;
  int http_port_ = -1;
  int admin_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace tessera::router
