#include "router/router_server.h"

#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/api/cluster_channel.h"
#include "common/grpc/server_setup.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "router/admin_service.h"
#include "router/auth.h"
#include "router/llm_service.h"
#include "router/openai/http_api.h"
#include "router/registry_service.h"

namespace tessera::router {
namespace {

// Relays still live after the servers shut down are upstream calls being
// cancelled; they end within moments.
constexpr absl::Duration kRelayDrainTimeout = absl::Seconds(10);

absl::Status ValidateOptions(const RouterServerOptions& o) {
  if (o.port < 0 || o.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--port must be in [0, 65535], got ", o.port));
  }
  if (o.admin_port < 0 || o.admin_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--admin-port must be in [0, 65535], got ", o.admin_port));
  }
  if (o.admin_token.empty() && !IsLoopbackHost(o.admin_host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to serve the Admin API on --admin-host ", o.admin_host,
        " (not loopback) without an admin token: set --admin-token or TESSERA_ADMIN_TOKEN, or "
        "use --admin-host 127.0.0.1"));
  }
  if (o.admission.max_concurrent < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-concurrent-requests must be at least 1, got ", o.admission.max_concurrent));
  }
  if (o.admission.max_queued < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-queued-requests must be at least 0, got ", o.admission.max_queued));
  }
  if (o.admission.queue_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--queue-timeout must be positive, got ", absl::FormatDuration(o.admission.queue_timeout)));
  }
  if (o.admission.headroom < 0 || o.admission.headroom >= o.admission.max_concurrent) {
    return absl::InvalidArgumentError(
        absl::StrCat("--admission-headroom must be in [0, --max-concurrent-requests - 1 = ",
                     o.admission.max_concurrent - 1, "], got ", o.admission.headroom));
  }
  if (!(o.default_tenant.weight > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--default-tenant-weight must be positive, got ", o.default_tenant.weight));
  }
  if (o.default_tenant.max_concurrent_requests < 0 || o.default_tenant.tokens_per_minute < 0) {
    return absl::InvalidArgumentError(
        "--default-tenant-max-concurrent-requests and --default-tenant-tokens-per-minute must "
        "not be negative (0 = no limit)");
  }
  if (o.relay.max_attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-attempts must be at least 1, got ", o.relay.max_attempts));
  }
  if (o.relay.max_failovers < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-failovers must be at least 0, got ", o.relay.max_failovers));
  }
  if (o.relay.retry_backoff < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--retry-backoff-ms must not be negative");
  }
  if (o.pool.health_interval <= absl::ZeroDuration() ||
      o.pool.health_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--health-interval-ms and --health-timeout-ms must be positive");
  }
  if (o.pool.unhealthy_threshold < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--unhealthy-threshold must be at least 1, got ", o.pool.unhealthy_threshold));
  }
  if (o.pool.breaker.failure_threshold < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--breaker-failures must be at least 1, got ",
                                                   o.pool.breaker.failure_threshold));
  }
  if (o.pool.breaker.open_duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--breaker-open-seconds must be positive");
  }
  if (o.dns_refresh <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--dns-refresh-seconds must be positive");
  }
  return absl::OkStatus();
}

void SetServing(grpc::Server* server, std::initializer_list<const char*> services, bool serving) {
  if (server == nullptr) return;
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus("", serving);
  for (const char* name : services) health->SetServingStatus(name, serving);
}

constexpr std::initializer_list<const char*> kClientServices = {"tessera.v1.Llm",
                                                                "tessera.v1.Registry"};
constexpr std::initializer_list<const char*> kAdminServices = {"tessera.v1.Admin"};

}  // namespace

struct RouterServer::Services {
  std::unique_ptr<BearerAuth> api_auth;
  std::unique_ptr<BearerAuth> admin_auth;
  std::unique_ptr<api::ClusterAuth> cluster_auth;
  std::unique_ptr<Tenants> tenants;
  std::unique_ptr<RequestIntake> intake;
  std::unique_ptr<LlmService> llm;
  std::unique_ptr<openai::HttpApi> http_api;
  std::unique_ptr<RegistryService> registry;
  std::unique_ptr<AdminService> admin;
};

absl::StatusOr<std::unique_ptr<RouterServer>> RouterServer::Start(RouterServerOptions options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<RouterServer> r(new RouterServer());
  r->options_ = std::move(options);
  const RouterServerOptions& o = r->options_;

  ASSIGN_OR_RETURN(std::unique_ptr<PlacementPolicy> policy, MakePolicy(o.policy, o.policy_options));
  WorkerPoolOptions pool_options = o.pool;
  pool_options.watch_kv_events = policy->wants_prefix_match();
  pool_options.cluster = o.cluster;
  r->pool_ = std::make_unique<WorkerPool>(std::move(pool_options), std::move(policy));

  for (const std::string& entry : o.workers) {
    if (IsDnsTarget(entry)) {
      ASSIGN_OR_RETURN(DnsTarget target, ParseDnsTarget(entry));
      auto discovery =
          std::make_unique<DnsDiscovery>(r->pool_.get(), std::move(target), o.dns_refresh,
                                         o.resolver ? o.resolver : SystemResolver());
      if (absl::Status s = discovery->Start(); !s.ok()) {
        // The refresh thread keeps trying; a DNS outage must not stop the router.
        spdlog::warn("--workers {}: {}", entry, s);
      }
      r->discovery_.push_back(std::move(discovery));
      continue;
    }
    absl::StatusOr<v1::WorkerInfo> info = r->pool_->Add(entry, v1::WorkerInfo::SOURCE_STATIC);
    if (!info.ok()) {
      return absl::Status(info.status().code(),
                          absl::StrCat("--workers ", entry, ": ", info.status().message()));
    }
    spdlog::info("worker {} at {} (static)", info->id(), info->address());
  }

  r->admission_ = std::make_unique<AdmissionController>(o.admission);
  r->trimmer_ = std::make_unique<MemoryTrimmer>(&r->tracker_, absl::Seconds(5));
  if (o.request_log) {
    r->request_log_ = std::make_unique<RequestLog>(
        o.log_format, o.request_log_out != nullptr ? o.request_log_out : stdout);
  }
  r->metrics_ = std::make_unique<RouterMetrics>(r->pool_.get(), r->admission_.get(), &r->counters_,
                                                r->request_log_.get());

  auto services = std::make_unique<Services>();
  services->api_auth = std::make_unique<BearerAuth>(o.api_key, "the router's --api-key");
  services->admin_auth = std::make_unique<BearerAuth>(o.admin_token, "--admin-token");
  services->cluster_auth = std::make_unique<api::ClusterAuth>(o.cluster, "this router's Registry");
  TenantsOptions tenants;
  tenants.keyed = o.api_keys;
  tenants.api_key = o.api_key;
  tenants.user_tenants = o.user_tenants;
  tenants.defaults = o.default_tenant;
  services->tenants = std::make_unique<Tenants>(std::move(tenants), &r->metrics_->registry());
  LlmServiceOptions llm;
  llm.relay.pool = r->pool_.get();
  llm.relay.admission = r->admission_.get();
  llm.relay.counters = &r->counters_;
  llm.relay.tracker = &r->tracker_;
  llm.relay.observer = r->metrics_.get();
  llm.relay.front_end = "grpc";
  llm.relay.options = o.relay;
  llm.auth = services->api_auth.get();
  llm.tenants = services->tenants.get();
  IntakeOptions intake;
  intake.request_id_prefix = o.request_id_prefix;
  intake.served_model_names = o.served_model_names;
  services->intake = std::make_unique<RequestIntake>(r->pool_.get(), std::move(intake));
  llm.intake = services->intake.get();
  openai::HttpApiOptions http_api;
  http_api.relay = llm.relay;
  http_api.relay.front_end = "http";
  http_api.intake = llm.intake;
  http_api.auth = llm.auth;
  http_api.tenants = llm.tenants;
  http_api.metrics = r->metrics_.get();
  services->llm = std::make_unique<LlmService>(std::move(llm));
  services->http_api = std::make_unique<openai::HttpApi>(std::move(http_api));
  services->registry = std::make_unique<RegistryService>(
      r->pool_.get(), services->cluster_auth.get(), o.heartbeat_interval);
  services->admin = std::make_unique<AdminService>(r->pool_.get(), r->admission_.get(),
                                                   &r->counters_, services->admin_auth.get());
  r->services_ = std::move(services);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  {
    grpc::ServerBuilder builder;
    rpc::ConfigureServerBuilder(builder);
    const std::string listen = absl::StrCat(o.host, ":", o.port);
    builder.AddListeningPort(listen, api::ClusterServerCredentials(o.cluster), &r->port_);
    builder.RegisterService(r->services_->llm.get());
    builder.RegisterService(r->services_->registry.get());
    r->server_ = builder.BuildAndStart();
    if (r->server_ == nullptr || r->port_ == 0) {
      r->server_.reset();
      return rpc::ListenError(listen, "--host/--port");
    }
  }
  {
    grpc::ServerBuilder builder;
    rpc::ConfigureServerBuilder(builder);
    const std::string listen = absl::StrCat(o.admin_host, ":", o.admin_port);
    builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &r->admin_port_);
    builder.RegisterService(r->services_->admin.get());
    r->admin_server_ = builder.BuildAndStart();
    if (r->admin_server_ == nullptr || r->admin_port_ == 0) {
      r->admin_server_.reset();
      return rpc::ListenError(listen, "--admin-host/--admin-port");
    }
  }
  if (o.http_port >= 0) {
    http::ServerOptions http_options;
    http_options.host = o.http_host;
    http_options.port = o.http_port;
    http_options.threads = o.http_threads;
    http_options.max_body_bytes = o.max_request_body;
    http_options.error_response = &openai::ServerErrorResponse;
    openai::HttpApi* api = r->services_->http_api.get();
    absl::StatusOr<std::unique_ptr<http::Server>> http_server = http::Server::Start(
        std::move(http_options), [api](http::Request request, std::shared_ptr<http::Exchange> e) {
          api->Handle(std::move(request), std::move(e));
        });
    if (!http_server.ok()) {
      return absl::Status(http_server.status().code(), absl::StrCat(http_server.status().message(),
                                                                    " (--http-host/--http-port)"));
    }
    r->http_server_ = *std::move(http_server);
    r->http_port_ = r->http_server_->port();
  }
  if (o.cluster.token.empty() && !o.cluster.tls() && !IsLoopbackHost(o.host)) {
    spdlog::warn(
        "no --cluster-token: Registry takes calls from this machine only; set --cluster-token "
        "(or TESSERA_CLUSTER_TOKEN) here and on the workers to let remote workers register");
  }
  SetServing(r->server_.get(), kClientServices, true);
  SetServing(r->admin_server_.get(), kAdminServices, true);
  spdlog::info(
      "tessera-router: client port {}:{}{}, admin port {}:{}, HTTP (OpenAI API) {}, policy {}, {} "
      "worker(s)",
      o.host, r->port_, o.cluster.tls() ? " (TLS)" : "", o.admin_host, r->admin_port_,
      r->http_port_ >= 0 ? absl::StrCat(o.http_host, ":", r->http_port_) : "off",
      r->pool_->policy().name(), r->pool_->List().size());
  return r;
}

void RouterServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  SetServing(server_.get(), kClientServices, false);
  SetServing(admin_server_.get(), kAdminServices, false);
  const auto deadline = std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(std::max(grace, absl::ZeroDuration()));
  // In-flight streams get until the deadline; then gRPC cancels them, and
  // each relay cancels its upstream call.
  // HTTP streams get the same grace, at the same time; then they are closed,
  // which cancels their relays.
  std::thread http_stop;
  if (http_server_ != nullptr) {
    http_stop = std::thread([this, grace] { http_server_->Shutdown(grace); });
  }
  if (server_ != nullptr) server_->Shutdown(deadline);
  if (http_stop.joinable()) http_stop.join();
  if (admin_server_ != nullptr) {
    admin_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  if (!tracker_.WaitIdle(kRelayDrainTimeout)) {
    spdlog::error("{} relayed request(s) still running {} after shutdown", tracker_.live(),
                  absl::FormatDuration(kRelayDrainTimeout));
  }
  discovery_.clear();  // stops the refresh threads before the pool goes
}

Tenants& RouterServer::tenants() { return *services_->tenants; }

RouterServer::~RouterServer() {
  Shutdown(absl::ZeroDuration());
  // Members go in reverse order: servers, services, admission, discovery,
  // pool. Relays are gone (Shutdown waited for them).
}

}  // namespace tessera::router
