// The leader's engine thread. It alone owns the Engine (and the replica's
// communicator) and loops: drain the intake queue (new requests, aborts) ->
// Engine::Step() -> hand each output to its request's sink. When idle on a
// multi-rank replica it broadcasts a heartbeat plan every
// `idle_heartbeat_interval`, so a dead or hung follower is noticed without
// load. It publishes a load snapshot for GetLoad after every step. With a
// StepWatchdog, each step and heartbeat is bracketed by it; while it reports
// the replica stalled, Submit refuses with UNAVAILABLE and load() says so.
//
// Drain: Drain() stops admission (UNAVAILABLE); in-flight requests finish;
// then the loop tells the followers to shut down and ends (Wait() -> OK). Past
// the drain deadline the remaining requests end with UNAVAILABLE "shutdown
// timeout" and the loop ends the same way. A failed step (a rank is gone)
// ends every request with UNAVAILABLE and the loop (Wait() -> the error).
//
// Thread-safe: Submit, Abort, Drain, load() and Wait() may be called from any
// thread; they only touch the intake queue and the published snapshot under a
// mutex and never block on the engine.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "worker/comm/communicator.h"
#include "worker/engine/engine.h"
#include "worker/server/kv_event_hub.h"
#include "worker/server/stats_logger.h"
#include "worker/server/step_watchdog.h"
#include "worker/server/worker_metrics.h"

namespace tessera {

// Where a request's outputs go (a gRPC stream, or a test's collector).
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  // Engine thread, once: the request was scheduled for the first time.
  virtual void OnScheduled() = 0;
  // Engine thread: one step's output of one choice (RequestOutput::index;
  // each choice's last one has finished(), and the request ends after the
  // last of its params.n choices has). Returns
  // true when the sink ended the request itself (a stop string matched): the
  // loop then aborts it in the engine and delivers nothing more to this sink.
  virtual bool OnOutput(RequestOutput output) = 0;
  // Any thread, at most once and then nothing more: the request ends with
  // `status` (not OK) instead of a final output.
  virtual void OnError(absl::Status status) = 0;
};

struct EngineLoopOptions {
  // Requests waiting at most, the intake queue included (>= 1).
  int max_waiting = 4096;
  // Idle heartbeat to the followers (multi-rank only); 0 = none.
  std::chrono::milliseconds idle_heartbeat_interval{1000};
  // Window of LoadSnapshot::tokens_per_second.
  std::chrono::milliseconds load_interval{1000};
  // Where the engine thread records metrics (may be null: none); must outlive the loop.
  WorkerMetrics* metrics = nullptr;
  // The periodic stats line (StatsLogger) while busy; 0 = none (--disable-log-stats).
  std::chrono::milliseconds log_stats_interval{10000};
  // Cumulative seconds the replica spent in tensor-parallel collectives (for the metrics);
  // may be empty. Called on the engine thread.
  std::function<double()> collective_seconds;
  // Watches every step and heartbeat for a stall (a hung rank); may be null.
  // Must outlive the loop.
  StepWatchdog* watchdog = nullptr;
};

// What GetLoad reports.
struct LoadSnapshot {
  int running = 0;
  int waiting = 0;  // the scheduler's waiting queue + the intake queue
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_total = 0;
  double prefix_cache_hit_rate = 0.0;
  int64_t prefix_cache_queried_tokens = 0;
  int64_t prefix_cache_hit_tokens = 0;
  double tokens_per_second = 0.0;
  bool draining = false;
  int in_flight = 0;  // requests with a sink (admitted, not yet finished)
  // The watchdog's verdict: the current step has run `stall_seconds`, past
  // its bound (StallDetector); a rank may be hung.
  bool stalled = false;
  double stall_seconds = 0.0;
};

class EngineLoop {
 public:
  // `engine`, `comm` (the engine's communicator) and `hub` (may be null) must
  // outlive the loop. The loop installs itself as the engine's KV event sink
  // when `hub` is set. Start() launches the thread.
  EngineLoop(Engine& engine, Communicator& comm, KvEventHub* hub, EngineLoopOptions options);
  ~EngineLoop();  // Drain(now) and join when still running
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  void Start();

  // Queues a validated request for the engine (which may still refuse it:
  // then sink->OnError). `request.request_id` must be non-empty. Refuses with
  // UNAVAILABLE while draining or after a failure, RESOURCE_EXHAUSTED past
  // max_waiting; the sink is then not used.
  absl::Status Submit(EngineRequest request, std::shared_ptr<RequestSink> sink);
  // Aborts the request at the next step (unknown ids are ignored). With
  // `sink`, only the request that sink was submitted with: a late cancel can
  // never end a newer request that reuses the id.
  void Abort(std::string request_id, const RequestSink* sink = nullptr);

  // Starts draining (idempotent; the earliest deadline wins). Returns the
  // requests in flight when called.
  int Drain(std::chrono::steady_clock::time_point deadline);
  bool draining() const;

  LoadSnapshot load() const;

  // Blocks until the loop has ended: OK after a drain (including a timed-out
  // one), the step's error when the replica failed.
  absl::Status Wait();
  // True once the loop has ended.
  bool done() const;

 private:
  struct Pending {
    EngineRequest request;
    std::shared_ptr<RequestSink> sink;
    std::chrono::steady_clock::time_point arrival;
  };
  void Run();
  // Engine thread helpers.
  void AdmitAll(std::vector<Pending>& pending);
  void Deliver(std::vector<RequestOutput>& outputs);
  void FailAll(const absl::Status& status);
  void Publish();
  absl::Status Heartbeat();

  Engine& engine_;
  Communicator& comm_;
  KvEventHub* const hub_;
  const EngineLoopOptions options_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::vector<Pending> intake_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, const RequestSink*>> aborts_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<std::chrono::steady_clock::time_point> drain_deadline_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  LoadSnapshot snapshot_ ABSL_GUARDED_BY(mu_);
  int sched_waiting_ ABSL_GUARDED_BY(mu_) = 0;  // the scheduler's, at the last step
  bool started_ ABSL_GUARDED_BY(mu_) = false;

  // Engine thread only.
  struct Active {
    std::shared_ptr<RequestSink> sink;
    int unfinished = 1;  // choices without their final output yet
    // For the metrics.
    std::chrono::steady_clock::time_point arrival;
    std::optional<std::chrono::steady_clock::time_point> scheduled;
    bool first_token_seen = false;
    // Per choice: when its latest token came (epoch = none yet).
    std::vector<std::chrono::steady_clock::time_point> last_token;
  };
  // Records one output of `active` in the metrics and the stats line.
  void Record(Active& active, const RequestOutput& o, std::chrono::steady_clock::time_point now);
  absl::flat_hash_map<std::string, Active> sinks_;
  // Ended by their sink (stop string) and aborted in the engine, whose final
  // output has not come out yet: the id stays taken until it does.
  absl::flat_hash_set<std::string> ending_;
  std::vector<std::string> unscheduled_;  // admitted, not yet seen running
  std::chrono::steady_clock::time_point last_collective_;
  std::chrono::steady_clock::time_point window_start_;
  int64_t window_tokens_ = 0;
  double tokens_per_second_ = 0.0;
  bool healthy_ = true;  // false once a step failed
  std::optional<StatsLogger> stats_logger_;
};

}  // namespace tessera
