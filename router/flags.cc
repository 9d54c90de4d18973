#include "router/flags.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/api/cluster_flags.h"
#include "common/grpc/server_setup.h"
#include "router/tenant_config.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address the client server (Llm, Registry) listens on");
ABSL_FLAG(int, port, 50050,
          "Client port (tessera.v1.Llm and tessera.v1.Registry); 0 = a free port");
ABSL_FLAG(
    std::string, port_file, "",
    "Once the servers listen, write \"CLIENT_PORT ADMIN_PORT HTTP_PORT\\n\" here (atomically: "
    "write + rename)");
ABSL_FLAG(std::string, admin_host, "127.0.0.1",
          "Address the admin server (tessera.v1.Admin) listens on; a non-loopback address "
          "needs --admin-token");
ABSL_FLAG(int, admin_port, 50055, "Admin port (tessera.v1.Admin); 0 = a free port");
ABSL_FLAG(std::string, admin_token, "",
          "Admin calls must send 'authorization: Bearer TOKEN'; default $TESSERA_ADMIN_TOKEN; "
          "empty = no check (loopback --admin-host only)");
ABSL_FLAG(std::string, api_key, "",
          "Llm calls and the HTTP API must send 'authorization: Bearer KEY'; default "
          "$TESSERA_API_KEY; empty = open. Health and reflection stay open. Registry needs "
          "--cluster-token instead");
ABSL_FLAG(std::string, api_keys, "",
          "Tenants file (JSON): {\"tenants\": [{\"name\": \"chat\", \"key\": \"sk-...\", "
          "\"weight\": 4, \"max_concurrent_requests\": 64, \"tokens_per_minute\": 100000, "
          "\"max_priority\": 0}, ...]}. Each key is a tenant: Llm and HTTP calls must send one "
          "of these keys (or --api-key) as 'authorization: Bearer KEY'; waiting requests get "
          "the router's slots in proportion to their tenant's weight (default 1); "
          "max_concurrent_requests (queued + running) and tokens_per_minute (prompt + "
          "completion tokens) limits answer 429 / RESOURCE_EXHAUSTED with Retry-After (0 or "
          "absent = no limit); a priority more urgent (lower) than max_priority is raised to it");
ABSL_FLAG(bool, user_tenants, false,
          "A request whose key is not an --api-keys tenant's belongs to the tenant named by its "
          "`user` (OpenAI `user` field, GenerateRequest.user on gRPC), with the default tenant's "
          "weight and limits; metrics count them together as tenant=\"user\"");
ABSL_FLAG(double, default_tenant_weight, 1.0,
          "Weight of the default tenant (no --api-keys key, no user) and of each user tenant");
ABSL_FLAG(int64_t, default_tenant_max_concurrent_requests, 0,
          "Requests in the router at once for the default tenant and for each user tenant; "
          "0 = no limit");
ABSL_FLAG(int64_t, default_tenant_tokens_per_minute, 0,
          "Prompt + completion tokens per minute for the default tenant and for each user "
          "tenant; 0 = no limit");
ABSL_FLAG(std::optional<int>, default_tenant_max_priority, std::nullopt,
          "The most urgent (lowest) priority the default tenant and user tenants may ask for; "
          "unset = any");
ABSL_FLAG(int64_t, admission_headroom, 0,
          "Slots of --max-concurrent-requests kept for tenants below their weighted share: a "
          "tenant flooding alone uses the others, and a tenant that arrives then starts at "
          "once; 0 = strictly work-conserving");
ABSL_FLAG(std::string, http_host, "0.0.0.0",
          "Address the OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, "
          "/v1/models, /health, /version, /tokenize, /detokenize) listens on");
ABSL_FLAG(int, http_port, 8000,
          "Port of the OpenAI-compatible HTTP API; 0 = a free port, -1 = no HTTP API");
ABSL_FLAG(int, http_threads, 2, "Threads serving HTTP connections (all connections share them)");
ABSL_FLAG(int64_t, max_request_body, 8 << 20,
          "Largest HTTP request body in bytes; larger ones get 413");
ABSL_FLAG(std::string, served_model_name, "",
          "Comma-separated names clients may use for the model in requests (the first is the "
          "one /v1/models and responses report); default: the workers' model id");
ABSL_FLAG(std::string, workers, "",
          "Comma-separated workers (replica leaders): host:port entries, or dns:///NAME:PORT to "
          "follow a DNS name (e.g. a Kubernetes headless Service)");
ABSL_FLAG(double, dns_refresh_seconds, 5.0, "How often dns:/// --workers entries are re-resolved");
ABSL_FLAG(std::string, policy, "prefix",
          "Placement policy: prefix (longest cached prompt prefix, traded off against load), "
          "least_load (power of two choices) or round_robin");
ABSL_FLAG(double, balance_rel, 1.5,
          "prefix policy: the cluster is out of balance (use least_load) when max load > "
          "balance_rel * min load + balance_abs");
ABSL_FLAG(int64_t, balance_abs, 4, "prefix policy: see --balance-rel");
ABSL_FLAG(int64_t, max_concurrent_requests, 1024,
          "Requests relayed at once; more wait in the router's queue");
ABSL_FLAG(int64_t, max_queued_requests, 4096,
          "Requests waiting for a slot at most; beyond that RESOURCE_EXHAUSTED");
ABSL_FLAG(double, queue_timeout, 30.0,
          "Seconds a request may wait for a slot before DEADLINE_EXCEEDED");
ABSL_FLAG(int, max_attempts, 3,
          "Placements per request: a worker failing before the first token is retried on "
          "another worker, up to this many attempts in all");
ABSL_FLAG(int, max_failovers, 2,
          "Times a request's stream is continued on another worker when its worker fails "
          "after the first token (the same tokens and text as without the failure; n = 1); "
          "0: such a failure ends the request");
ABSL_FLAG(int, retry_backoff_ms, 20,
          "Backoff before the first retry (ms); doubles per retry, with jitter");
ABSL_FLAG(int, health_interval_ms, 500, "Worker health-and-load poll (GetLoad) interval (ms)");
ABSL_FLAG(int, health_timeout_ms, 1000, "Deadline of one health poll (ms)");
ABSL_FLAG(int, unhealthy_threshold, 2,
          "Consecutive failed polls after which a worker leaves the rotation");
ABSL_FLAG(int, breaker_failures, 3,
          "Consecutive failed requests on a worker that open its circuit breaker");
ABSL_FLAG(double, breaker_open_seconds, 5.0,
          "Seconds an open breaker keeps its worker out before one probe request");
ABSL_FLAG(double, shutdown_timeout, 30.0,
          "On SIGTERM/SIGINT: seconds in-flight streams may still run; then they are "
          "cancelled and the router exits 0");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(bool, request_log, true,
          "Write one line per finished request to stdout: request id, client id, model, worker, "
          "tokens, queue/TTFT/total ms, finish reason, status");
ABSL_FLAG(std::string, log_format, "text",
          "Format of the request log: text (key=value) or json (one JSON object per line)");

namespace tessera::router {
namespace {

std::string FlagOrEnv(const std::string& flag, const char* env) {
  if (!flag.empty()) return flag;
  const char* value = std::getenv(env);
  return value == nullptr ? "" : value;
}

absl::Duration Seconds(double s) { return absl::Seconds(s); }

}  // namespace

absl::StatusOr<RouterServerOptions> RouterOptionsFromFlags() {
  RouterServerOptions o;
  o.host = absl::GetFlag(FLAGS_host);
  o.port = absl::GetFlag(FLAGS_port);
  o.admin_host = absl::GetFlag(FLAGS_admin_host);
  o.admin_port = absl::GetFlag(FLAGS_admin_port);
  o.admin_token = FlagOrEnv(absl::GetFlag(FLAGS_admin_token), "TESSERA_ADMIN_TOKEN");
  o.api_key = FlagOrEnv(absl::GetFlag(FLAGS_api_key), "TESSERA_API_KEY");
  absl::StatusOr<api::ClusterCredentials> cluster = api::ClusterCredentialsFromFlags();
  if (!cluster.ok()) return cluster.status();
  o.cluster = *std::move(cluster);
  if (const std::string keys = absl::GetFlag(FLAGS_api_keys); !keys.empty()) {
    absl::StatusOr<std::vector<KeyedTenant>> tenants = LoadApiKeysFile(keys);
    if (!tenants.ok()) return tenants.status();
    o.api_keys = *std::move(tenants);
  }
  o.user_tenants = absl::GetFlag(FLAGS_user_tenants);
  o.default_tenant.weight = absl::GetFlag(FLAGS_default_tenant_weight);
  o.default_tenant.max_concurrent_requests =
      absl::GetFlag(FLAGS_default_tenant_max_concurrent_requests);
  o.default_tenant.tokens_per_minute = absl::GetFlag(FLAGS_default_tenant_tokens_per_minute);
  if (const std::optional<int> p = absl::GetFlag(FLAGS_default_tenant_max_priority)) {
    o.default_tenant.max_priority = *p;
  }
  o.admission.headroom = absl::GetFlag(FLAGS_admission_headroom);
  o.http_host = absl::GetFlag(FLAGS_http_host);
  o.http_port = absl::GetFlag(FLAGS_http_port);
  o.http_threads = absl::GetFlag(FLAGS_http_threads);
  // Out-of-range ports are usage errors (gRPC would pick a random port).
  for (const auto& [flag, port, may_be_off] :
       {std::tuple("--port", o.port, false), std::tuple("--admin-port", o.admin_port, false),
        std::tuple("--http-port", o.http_port, true)}) {
    if (absl::Status s = rpc::CheckPortFlag(flag, port, may_be_off); !s.ok()) return s;
  }
  if (o.http_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-threads must be at least 1, got ", o.http_threads));
  }
  const int64_t max_body = absl::GetFlag(FLAGS_max_request_body);
  if (max_body < 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-request-body must be at least 1024 bytes, got ", max_body));
  }
  o.max_request_body = static_cast<size_t>(max_body);
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_served_model_name), ',')) {
    name = absl::StripAsciiWhitespace(name);
    if (!name.empty()) o.served_model_names.emplace_back(name);
  }
  for (absl::string_view entry : absl::StrSplit(absl::GetFlag(FLAGS_workers), ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (!entry.empty()) o.workers.emplace_back(entry);
  }
  o.dns_refresh = Seconds(absl::GetFlag(FLAGS_dns_refresh_seconds));
  o.policy = absl::GetFlag(FLAGS_policy);
  o.policy_options.balance_rel = absl::GetFlag(FLAGS_balance_rel);
  o.policy_options.balance_abs = absl::GetFlag(FLAGS_balance_abs);
  o.admission.max_concurrent = absl::GetFlag(FLAGS_max_concurrent_requests);
  o.admission.max_queued = absl::GetFlag(FLAGS_max_queued_requests);
  o.admission.queue_timeout = Seconds(absl::GetFlag(FLAGS_queue_timeout));
  o.relay.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  o.relay.retry_backoff = absl::Milliseconds(absl::GetFlag(FLAGS_retry_backoff_ms));
  o.relay.max_failovers = absl::GetFlag(FLAGS_max_failovers);
  o.pool.health_interval = absl::Milliseconds(absl::GetFlag(FLAGS_health_interval_ms));
  o.pool.health_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_health_timeout_ms));
  o.pool.unhealthy_threshold = absl::GetFlag(FLAGS_unhealthy_threshold);
  o.pool.breaker.failure_threshold = absl::GetFlag(FLAGS_breaker_failures);
  o.pool.breaker.open_duration = Seconds(absl::GetFlag(FLAGS_breaker_open_seconds));
  if (absl::Status s = ApplyPoolFlags(o.pool); !s.ok()) return s;
  o.request_log = absl::GetFlag(FLAGS_request_log);
  absl::StatusOr<RequestLogFormat> format = ParseRequestLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!format.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--log-format: ", format.status().message()));
  }
  o.log_format = *format;
  if (o.policy_options.balance_rel < 1.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--balance-rel must be at least 1, got ", o.policy_options.balance_rel));
  }
  if (o.policy_options.balance_abs < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--balance-abs must not be negative, got ", o.policy_options.balance_abs));
  }
  return o;
}

std::string PortFileFlag() { return absl::GetFlag(FLAGS_port_file); }
std::string LogLevelFlag() { return absl::GetFlag(FLAGS_log_level); }
absl::Duration ShutdownTimeoutFlag() {
  return absl::Seconds(std::max(0.0, absl::GetFlag(FLAGS_shutdown_timeout)));
}

}  // namespace tessera::router
