#include "router/router_metrics.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/api/grpc_status.h"
#include "common/api/wire_names.h"
#include "router/circuit_breaker.h"
#include "router/policy.h"

namespace tessera::router {
namespace {

using metrics::MetricType;

// Matched prompt blocks: 0, 1, 2, 4, ..., 4096.
std::vector<double> BlockBuckets() {
  std::vector<double> b = {0};
  for (double v = 1; v <= 4096; v *= 2) b.push_back(v);
  return b;
}

// Router-side latencies are mostly milliseconds: 1 ms to 5 min.
std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
}

metrics::CallbackFamily::Fn Constant(double v) {
  return [v] { return v; };
}

constexpr v1::WorkerInfo::State kStates[] = {
    v1::WorkerInfo::STATE_HEALTHY, v1::WorkerInfo::STATE_UNHEALTHY, v1::WorkerInfo::STATE_DRAINING};
constexpr CircuitBreaker::State kBreakerStates[] = {
    CircuitBreaker::State::kClosed, CircuitBreaker::State::kOpen, CircuitBreaker::State::kHalfOpen};

}  // namespace

RouterMetrics::RouterMetrics(WorkerPool* pool, AdmissionController* admission,
                             RouterCounters* counters, RequestLog* log)
    : pool_(pool),
      log_(log),
      requests_(registry_.AddCounter("tessera_router_requests_total",
                                     "Requests that ended, by final gRPC status and by the last "
                                     "worker they were placed on (none: never placed).",
                                     {"worker", "status"})),
      retries_(registry_.AddCounter(
          "tessera_router_retries_total",
          "Attempts that failed before any token reached the client and were placed again on "
          "another worker, by the worker that failed and why (worker_error, rejected).",
          {"worker", "reason"})),
      failovers_(registry_
                     .AddCounter("tessera_router_failovers_total",
                                 "Requests that ended OK on another worker after a retry.")
                     .Labels({})),
      continuations_(registry_
                         .AddCounter("tessera_router_stream_continuations_total",
                                     "Streams continued on another worker after a worker failed "
                                     "with output already delivered to the client (mid-stream "
                                     "failover; each continuation counted).")
                         .Labels({})),
      placements_(registry_.AddCounter(
          "tessera_router_placements_total",
          "Placement decisions by reason: prefix_match (the chosen worker held part of the "
          "prompt), balance_fallback (out of balance: least load), policy (anything else).",
          {"reason"})),
      matched_blocks_(registry_
                          .AddHistogram("tessera_router_placement_matched_blocks",
                                        "Leading prompt blocks the chosen worker held, per "
                                        "placement.",
                                        {}, BlockBuckets())
                          .Labels({})),
      queue_wait_(registry_
                      .AddHistogram("tessera_router_queue_wait_seconds",
                                    "Time requests waited in the router's admission queue.", {},
                                    LatencyBuckets())
                      .Labels({})),
      ttft_(registry_.AddHistogram("tessera_router_time_to_first_token_seconds",
                                   "Time from a request's arrival at the router to its first "
                                   "token, by front end (grpc, http).",
                                   {"front_end"}, metrics::buckets::TimeToFirstToken())),
      grpc_latency_(registry_.AddHistogram(
          "tessera_router_grpc_request_duration_seconds",
          "Duration of gRPC Llm.Generate calls at the router, by method and final status.",
          {"method", "code"}, LatencyBuckets())),
      http_latency_(registry_.AddHistogram(
          "tessera_router_http_request_duration_seconds",
          "Duration of HTTP requests at the router (to the end of the response), by route and "
          "status code.",
          {"route", "code"}, LatencyBuckets())),
      worker_healthy_(registry_.AddCallback(
          MetricType::kGauge, "tessera_router_worker_healthy",
          "1 when the router's health polls admit the worker, else 0.", {"worker"})),
      worker_state_(registry_.AddCallback(
          MetricType::kGauge, "tessera_router_worker_state",
          "1 for the worker's state at the router (healthy, unhealthy, draining), 0 for the "
          "others.",
          {"worker", "state"})),
      worker_breaker_(registry_.AddCallback(
          MetricType::kGauge, "tessera_router_worker_breaker_state",
          "1 for the state of the worker's circuit breaker (closed, open, half_open), 0 for the "
          "others.",
          {"worker", "state"})),
      worker_in_flight_(registry_.AddCallback(MetricType::kGauge, "tessera_router_worker_in_flight",
                                              "This router's requests running on the worker.",
                                              {"worker"})) {
  registry_
      .AddCallback(MetricType::kGauge, "tessera_router_queue_length",
                   "Requests waiting in the router's admission queue.")
      .Set({}, [admission] { return static_cast<double>(admission->queued()); });
  registry_
      .AddCallback(MetricType::kCounter, "tessera_router_admission_rejected_total",
                   "Requests refused by admission: queue full or queue timeout.")
      .Set({}, [admission] { return static_cast<double>(admission->rejected()); });
  registry_
      .AddCallback(MetricType::kGauge, "tessera_router_active_streams",
                   "Requests admitted and not ended (streams being relayed).")
      .Set({}, [counters] { return static_cast<double>(counters->in_flight.load()); });
}

void RouterMetrics::OnAdmission(const absl::Status& /*status*/, absl::Duration waited) {
  queue_wait_.Observe(absl::ToDoubleSeconds(waited));
}

void RouterMetrics::OnPlacement(const Lease& lease) {
  placements_.Labels({PlacementReasonName(lease.reason())}).Inc();
  matched_blocks_.Observe(lease.matched_blocks());
}

void RouterMetrics::OnRetry(const std::string& worker, Outcome outcome) {
  retries_.Labels({worker, outcome == Outcome::kRejected ? "rejected" : "worker_error"}).Inc();
}

void RouterMetrics::OnEnd(const RequestRecord& r) {
  const std::string code = api::StatusCodeName(r.status);
  requests_.Labels({r.worker.empty() ? "none" : r.worker, code}).Inc();
  if (r.failed_over) failovers_.Inc();
  if (r.continuations > 0) continuations_.Inc(r.continuations);
  if (r.ttft.has_value()) ttft_.Labels({r.front_end}).Observe(absl::ToDoubleSeconds(*r.ttft));
  if (r.front_end == "grpc") {
    grpc_latency_.Labels({"Generate", code}).Observe(absl::ToDoubleSeconds(r.total));
  }
  if (log_ != nullptr) log_->Write(r);
}

void RouterMetrics::OnRefused(grpc::StatusCode code) {
  requests_.Labels({"none", api::StatusCodeName(code)}).Inc();
}

void RouterMetrics::ObserveHttp(const std::string& route, int status, absl::Duration elapsed) {
  http_latency_.Labels({route, absl::StrCat(status)}).Observe(absl::ToDoubleSeconds(elapsed));
}

std::string RouterMetrics::Expose() {
  SyncWorkers();
  return registry_.Expose();
}

void RouterMetrics::SyncWorkers() {
  absl::MutexLock lock(&sync_mu_);
  std::set<std::string> seen;
  for (const WorkerPool::WorkerHealth& w : pool_->Health()) {
    seen.insert(w.id);
    worker_healthy_.Set({w.id}, Constant(w.polled_healthy ? 1 : 0));
    for (const v1::WorkerInfo::State s : kStates) {
      worker_state_.Set({w.id, std::string(api::WorkerStateWord(s))},
                        Constant(w.state == s ? 1 : 0));
    }
    for (const CircuitBreaker::State b : kBreakerStates) {
      worker_breaker_.Set({w.id, CircuitStateName(b)}, Constant(w.breaker == b ? 1 : 0));
    }
    worker_in_flight_.Set({w.id}, Constant(static_cast<double>(w.in_flight)));
  }
  for (const std::string& id : known_workers_) {
    if (seen.contains(id)) continue;
    worker_healthy_.Remove({id});
    worker_in_flight_.Remove({id});
    for (const v1::WorkerInfo::State s : kStates)
      worker_state_.Remove({id, std::string(api::WorkerStateWord(s))});
    for (const CircuitBreaker::State b : kBreakerStates) {
      worker_breaker_.Remove({id, CircuitStateName(b)});
    }
  }
  known_workers_ = std::move(seen);
}

}  // namespace tessera::router
