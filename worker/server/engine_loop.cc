#include "worker/server/engine_loop.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/api/rejection.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "tessera/v1/step_plan.pb.h"
#include "worker/exec/replica_protocol.h"

namespace tessera {

using Clock = std::chrono::steady_clock;

EngineLoop::EngineLoop(Engine& engine, Communicator& comm, KvEventHub* hub,
                       EngineLoopOptions options)
    : engine_(engine), comm_(comm), hub_(hub), options_(std::move(options)) {
  if (options_.log_stats_interval.count() > 0) stats_logger_.emplace(options_.log_stats_interval);
  if (hub_ != nullptr) {
    engine_.set_kv_event_sink([hub = hub_](std::vector<KvEvent> events) { hub->Publish(events); });
  }
}

EngineLoop::~EngineLoop() {
  bool running;
  {
    absl::MutexLock lock(&mu_);
    running = started_ && !done_;
  }
  if (running) Drain(Clock::now());
  if (thread_.joinable()) thread_.join();
  engine_.set_kv_event_sink(nullptr);
}

void EngineLoop::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
  }
  Publish();
  thread_ = std::thread([this] { Run(); });
}

absl::Status EngineLoop::Submit(EngineRequest request, std::shared_ptr<RequestSink> sink) {
  absl::MutexLock lock(&mu_);
  if (done_ && !final_status_.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the worker's replica failed: ", final_status_.message()));
  }
  if (draining_ || done_) {
    return api::WithRejection(
        absl::UnavailableError("the worker is draining: it accepts no new requests"),
        api::Rejection::kDraining);
  }
  if (options_.watchdog != nullptr && options_.watchdog->state().stalled) {
    return absl::UnavailableError(
        "the worker's replica is stalled: its current step has run far longer than its recent "
        "steps (a rank may be hung)");
  }
  const int waiting = sched_waiting_ + static_cast<int>(intake_.size());
  if (waiting >= options_.max_waiting) {
    return api::WithRejection(
        absl::ResourceExhaustedError(absl::StrCat("the waiting queue is full (", waiting,
                                                  " requests, --max-waiting ", options_.max_waiting,
                                                  "); retry later")),
        api::Rejection::kQueueFull);
  }
  intake_.push_back(Pending{std::move(request), std::move(sink), Clock::now()});
  return absl::OkStatus();
}

void EngineLoop::Abort(std::string request_id, const RequestSink* sink) {
  absl::MutexLock lock(&mu_);
  if (done_) return;
  aborts_.emplace_back(std::move(request_id), sink);
}

int EngineLoop::Drain(Clock::time_point deadline) {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  snapshot_.draining = true;
  if (!drain_deadline_.has_value() || deadline < *drain_deadline_) drain_deadline_ = deadline;
  return snapshot_.in_flight + static_cast<int>(intake_.size());
}

bool EngineLoop::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

LoadSnapshot EngineLoop::load() const {
  absl::MutexLock lock(&mu_);
  LoadSnapshot s = snapshot_;
  s.waiting = sched_waiting_ + static_cast<int>(intake_.size());
  s.draining = draining_;
  const StepWatchdog::State stall =
      options_.watchdog != nullptr ? options_.watchdog->state() : StepWatchdog::State{};
  s.stalled = stall.stalled;
  s.stall_seconds = std::chrono::duration<double>(stall.elapsed).count();
  return s;
}

absl::Status EngineLoop::Wait() {
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  return final_status_;
}

bool EngineLoop::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

void EngineLoop::AdmitAll(std::vector<Pending>& pending) {
  for (Pending& p : pending) {
    const std::string id = p.request.request_id;
    const int n = p.request.choices();
    if (sinks_.contains(id) || ending_.contains(id)) {
      p.sink->OnError(absl::AlreadyExistsError(
          absl::StrCat("request_id '", id, "' is already in flight on this worker")));
      continue;
    }
    absl::Status s = engine_.AddRequest(std::move(p.request));
    if (!s.ok()) {
      p.sink->OnError(s);
      continue;
    }
    Active active;
    active.sink = std::move(p.sink);
    active.unfinished = n;
    active.arrival = p.arrival;
    sinks_.emplace(id, std::move(active));
    unscheduled_.push_back(id);
  }
  pending.clear();
}

void EngineLoop::Record(Active& active, const RequestOutput& o, Clock::time_point now) {
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const int tokens = static_cast<int>(o.new_tokens.size());
  if (tokens > 0 && !active.first_token_seen) {
    active.first_token_seen = true;
    if (options_.metrics != nullptr) {
      options_.metrics->OnFirstToken(seconds(now - active.arrival), o.prompt_tokens);
    }
    if (stats_logger_) stats_logger_->AddTokens(o.prompt_tokens, 0);
  }
  if (tokens > 0) {
    if (active.last_token.size() <= static_cast<size_t>(o.index)) {
      active.last_token.resize(o.index + 1);
    }
    Clock::time_point& last = active.last_token[o.index];
    const double itl = last == Clock::time_point() ? -1.0 : seconds(now - last);
    last = now;
    if (options_.metrics != nullptr) options_.metrics->OnTokens(tokens, itl);
    if (stats_logger_) stats_logger_->AddTokens(0, tokens);
  }
  if (o.finished() && options_.metrics != nullptr) {
    const double e2e = seconds(now - active.arrival);
    const double queue = active.scheduled ? seconds(*active.scheduled - active.arrival) : e2e;
    options_.metrics->OnFinished(o.finish_reason, e2e, queue, o.prompt_tokens, o.completion_tokens);
  }
}

void EngineLoop::Deliver(std::vector<RequestOutput>& outputs) {
  const Clock::time_point now = Clock::now();
  // First-scheduled notifications come before any token of the request.
  std::erase_if(unscheduled_, [this, now](const std::string& id) {
    auto it = sinks_.find(id);
    if (it == sinks_.end()) return true;
    // (With n > 1 its first choice may have finished while others run.)
    const Sequence* seq = engine_.scheduler().Find(id);
    if (seq != nullptr && seq->status() != SequenceStatus::kRunning && !seq->is_finished() &&
        seq->num_computed_tokens() == 0) {
      return false;
    }
    it->second.scheduled = now;
    it->second.sink->OnScheduled();
    return true;
  });
  for (RequestOutput& o : outputs) {
    window_tokens_ += static_cast<int64_t>(o.new_tokens.size());
    auto it = sinks_.find(o.request_id);
    if (it == sinks_.end()) {
      // Ended by its sink (stop string) earlier: its final output frees the id.
      if (o.finished()) ending_.erase(o.request_id);
      continue;
    }
    const bool finished = o.finished();
    Record(it->second, o, now);
    RequestOutput ended;  // what the metrics see of a request its sink ended
    if (!finished) {
      ended.index = o.index;
      ended.prompt_tokens = o.prompt_tokens;
      ended.completion_tokens = o.completion_tokens;
      ended.finish_reason = FinishReason::kStop;
    }
    const bool ended_by_sink = it->second.sink->OnOutput(std::move(o));
    if (finished) {
      if (--it->second.unfinished == 0) sinks_.erase(it);
    } else if (ended_by_sink) {
      Record(it->second, ended, now);
      const std::string id = it->first;
      sinks_.erase(it);
      if (engine_.Abort(id, FinishReason::kStop)) ending_.insert(id);
    }
  }
}

void EngineLoop::FailAll(const absl::Status& status) {
  for (auto& [id, active] : sinks_) active.sink->OnError(status);
  sinks_.clear();
  unscheduled_.clear();
}

void EngineLoop::Publish() {
  const Clock::time_point now = Clock::now();
  const auto elapsed = now - window_start_;
  if (elapsed >= options_.load_interval) {
    tokens_per_second_ =
        static_cast<double>(window_tokens_) / std::chrono::duration<double>(elapsed).count();
    window_tokens_ = 0;
    window_start_ = now;
  }
  const SchedulerStats st = engine_.scheduler().stats();
  int intake = 0;
  {
    absl::MutexLock lock(&mu_);
    snapshot_.running = st.num_running;
    sched_waiting_ = st.num_waiting;
    snapshot_.kv_blocks_used = st.used_blocks;
    snapshot_.kv_blocks_total = st.total_blocks;
    snapshot_.prefix_cache_hit_rate = st.prefix_cache_queries > 0
                                          ? static_cast<double>(st.prefix_cache_hits) /
                                                static_cast<double>(st.prefix_cache_queries)
                                          : 0.0;
    snapshot_.prefix_cache_queried_tokens = st.prefix_cache_queries;
    snapshot_.prefix_cache_hit_tokens = st.prefix_cache_hits;
    snapshot_.tokens_per_second = tokens_per_second_;
    snapshot_.draining = draining_;
    snapshot_.in_flight = static_cast<int>(sinks_.size());
    intake = static_cast<int>(intake_.size());
  }
  if (options_.metrics != nullptr || stats_logger_) {
    const BlockManager& bm = engine_.scheduler().block_manager();
    WorkerStateSample sample;
    sample.running = st.num_running;
    sample.waiting = st.num_waiting + intake;
    sample.kv_blocks_total = st.total_blocks;
    sample.kv_blocks_cached = bm.num_evictable_blocks();
    sample.kv_blocks_free = bm.num_free_blocks() - bm.num_evictable_blocks();
    sample.kv_blocks_used = bm.num_used_blocks();
    sample.prefix_cache_queries = st.prefix_cache_queries;
    sample.prefix_cache_hits = st.prefix_cache_hits;
    sample.num_preemptions = st.num_preemptions;
    if (options_.collective_seconds) sample.tp_collective_seconds = options_.collective_seconds();
    sample.healthy = healthy_;
    if (options_.metrics != nullptr) options_.metrics->Publish(sample);
    if (stats_logger_) {
      StatsLogger::State state;
      state.running = sample.running;
      state.waiting = sample.waiting;
      state.kv_usage = st.total_blocks > 0 ? static_cast<double>(st.used_blocks) /
                                                 static_cast<double>(st.total_blocks)
                                           : 0.0;
      state.prefix_cache_queries = st.prefix_cache_queries;
      state.prefix_cache_hits = st.prefix_cache_hits;
      stats_logger_->MaybeLog(now, state);
    }
  }
}

absl::Status EngineLoop::Heartbeat() {
  StepWatchdog::Scope watch(options_.watchdog);
  return SendHeartbeat(comm_);
}

void EngineLoop::Run() {
  last_collective_ = Clock::now();
  window_start_ = last_collective_;
  std::vector<Pending> pending;
  std::vector<std::pair<std::string, const RequestSink*>> aborts;
  absl::Status failure;
  bool timed_out = false;
  while (true) {
    const bool busy = engine_.HasUnfinished() || engine_.scheduler().has_aborted_outputs();
    bool draining = false;
    std::optional<Clock::time_point> deadline;
    {
      absl::MutexLock lock(&mu_);
      if (!busy) {
        // Idle: sleep until work arrives, the next heartbeat or the drain
        // deadline.
        auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !intake_.empty() || !aborts_.empty() || draining_;
        };
        Clock::duration wait = options_.load_interval;
        if (comm_.size() > 1 && options_.idle_heartbeat_interval.count() > 0) {
          wait = std::min<Clock::duration>(
              wait, options_.idle_heartbeat_interval - (Clock::now() - last_collective_));
        }
        if (wait > Clock::duration::zero()) {
          mu_.AwaitWithTimeout(absl::Condition(&has_work), absl::FromChrono(wait));
        }
      }
      pending.swap(intake_);
      aborts.swap(aborts_);
      draining = draining_;
      deadline = drain_deadline_;
    }
    AdmitAll(pending);
    for (const auto& [id, sink] : aborts) {
      auto it = sinks_.find(id);
      if (it != sinks_.end() && (sink == nullptr || it->second.sink.get() == sink)) {
        engine_.Abort(id);
      }
    }
    aborts.clear();

    if (engine_.HasUnfinished() || engine_.scheduler().has_aborted_outputs()) {
      const Clock::time_point step_start = Clock::now();
      StepWatchdog::Scope watch(options_.watchdog);
      absl::StatusOr<std::vector<RequestOutput>> outputs = engine_.Step();
      watch.End();
      if (!outputs.ok()) {
        failure = outputs.status();
        break;
      }
      last_collective_ = Clock::now();
      if (options_.metrics != nullptr && engine_.stats().last_step_seqs > 0) {
        options_.metrics->OnStep(
            std::chrono::duration<double>(last_collective_ - step_start).count(),
            engine_.stats().last_step_seqs, engine_.stats().last_step_tokens);
      }
      Deliver(*outputs);
    } else if (comm_.size() > 1 && options_.idle_heartbeat_interval.count() > 0 &&
               Clock::now() - last_collective_ >= options_.idle_heartbeat_interval) {
      if (absl::Status s = Heartbeat(); !s.ok()) {
        failure = s;
        break;
      }
      last_collective_ = Clock::now();
    }
    Publish();

    if (draining) {
      bool intake_empty;
      {
        absl::MutexLock lock(&mu_);
        intake_empty = intake_.empty();
      }
      if (sinks_.empty() && intake_empty) break;
      if (deadline.has_value() && Clock::now() >= *deadline) {
        timed_out = true;
        break;
      }
    }
  }

  if (!failure.ok()) {
    healthy_ = false;
    spdlog::error("engine step failed: {}", failure);
    FailAll(absl::UnavailableError(
        absl::StrCat("the worker's replica failed (a rank died or hung): ", failure.message())));
  } else {
    if (timed_out) {
      spdlog::warn("shutdown timeout: ending {} requests still in flight", sinks_.size());
      FailAll(absl::UnavailableError(
          "shutdown timeout: the worker drained for --shutdown-timeout and ended this "
          "request before it finished"));
    }
    failure = engine_.Shutdown();
    if (!failure.ok()) spdlog::error("telling the followers to shut down failed: {}", failure);
  }
  std::vector<Pending> late;
  {
    absl::MutexLock lock(&mu_);
    late.swap(intake_);
    done_ = true;
    final_status_ = failure;
    snapshot_.draining = true;
  }
  for (Pending& p : late) {
    p.sink->OnError(api::WithRejection(absl::UnavailableError("the worker is shutting down"),
                                       api::Rejection::kShuttingDown));
  }
  Publish();
}

}  // namespace tessera
