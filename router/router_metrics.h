// The router's Prometheus metrics (`tessera_router_…`, served at GET /metrics
// on the HTTP port by router/openai/http_api.cc), recorded from the relay's
// RelayObserver hooks (per admission, placement, retry and request end:
// never per streamed message) and read from the pool and the admission
// controller at scrape time:
//
//   tessera_router_requests_total{worker,status}        requests by final gRPC status
//                                                      and last worker ("none": never placed)
//   tessera_router_retries_total{worker,reason}         attempts retried elsewhere
//                                                      (reason worker_error | rejected)
//   tessera_router_failovers_total                      requests that ended OK after a retry
//   tessera_router_stream_continuations_total           streams continued on another worker
//                                                      after output reached the client
//   tessera_router_placements_total{reason}             prefix_match | balance_fallback | policy
//   tessera_router_placement_matched_blocks             histogram: prompt blocks the chosen
//                                                      worker held
//   tessera_router_worker_healthy{worker}               1 when the health polls admit it
//   tessera_router_worker_state{worker,state}           1 for its state (healthy, unhealthy,
//                                                      draining), 0 for the others
//   tessera_router_worker_breaker_state{worker,state}   1 for the breaker's state (closed,
//                                                      open, half_open)
//   tessera_router_worker_in_flight{worker}             this router's requests running there
//   tessera_router_queue_length                         requests waiting for admission
//   tessera_router_queue_wait_seconds                   histogram: admission wait
//   tessera_router_admission_rejected_total             queue full or queue timeout
//   tessera_router_active_streams                       admitted requests not ended
//   tessera_router_time_to_first_token_seconds{front_end}   histogram, at the router
//   tessera_router_grpc_request_duration_seconds{method,code}  histogram: Llm.Generate calls
//   tessera_router_http_request_duration_seconds{route,code}   histogram: every HTTP exchange
//
// Thread-safe.
#pragma once

#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "router/admission.h"
#include "router/generate_relay.h"
#include "router/request_log.h"
#include "router/worker_pool.h"

namespace tessera::router {

class RouterMetrics final : public RelayObserver {
 public:
  // The pointees outlive this object (and every scrape); `log` may be null
  // (no request log).
  RouterMetrics(WorkerPool* pool, AdmissionController* admission, RouterCounters* counters,
                RequestLog* log);

  // RelayObserver.
  void OnAdmission(const absl::Status& status, absl::Duration waited) override;
  void OnPlacement(const Lease& lease) override;
  void OnRetry(const std::string& worker, Outcome outcome) override;
  void OnEnd(const RequestRecord& record) override;
  // Counted in requests_total with worker "none".
  void OnRefused(grpc::StatusCode code) override;
  // One HTTP exchange answered with `status` after `elapsed` (route: the
  // path when it is one of the API's, else "other").
  void ObserveHttp(const std::string& route, int status, absl::Duration elapsed);

  // The exposition for GET /metrics: the per-worker gauges are refreshed
  // from the pool first.
  std::string Expose();

  metrics::Registry& registry() { return registry_; }

 private:
  void SyncWorkers();

  WorkerPool* const pool_;
  RequestLog* const log_;
  metrics::Registry registry_;
  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Counter>& retries_;
  metrics::Counter& failovers_;
  metrics::Counter& continuations_;
  metrics::Family<metrics::Counter>& placements_;
  metrics::Histogram& matched_blocks_;
  metrics::Histogram& queue_wait_;
  metrics::Family<metrics::Histogram>& ttft_;
  metrics::Family<metrics::Histogram>& grpc_latency_;
  metrics::Family<metrics::Histogram>& http_latency_;
  metrics::CallbackFamily& worker_healthy_;
  metrics::CallbackFamily& worker_state_;
  metrics::CallbackFamily& worker_breaker_;
  metrics::CallbackFamily& worker_in_flight_;

  absl::Mutex sync_mu_;  // one scrape refreshes the worker gauges at a time
  std::set<std::string> known_workers_ ABSL_GUARDED_BY(sync_mu_);
};

}  // namespace tessera::router
