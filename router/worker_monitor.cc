// WorkerPool's per-worker monitoring: the health-and-load poll and the
// KV-event watch that feeds the PrefixIndex.
//
// Poll (every health_interval, one at a time per worker, started by the
// scheduler): GetLoad with deadline health_timeout, then Llm.ListModels when
// the worker's model is not known yet (or its report names another model,
// or a new process registered at its address), and Worker.GetTokenizer for a
// tokenizer hash the pool has not loaded. What it reports is checked and
// voted on (worker_cluster_params.cc); a worker reporting values out of
// range, or other values than the cluster's, is refused (ejected at once).
//   healthy   --(unhealthy_threshold failed polls, refused, or the
//                worker reports its replica stalled)------------> ejected
//   ejected   --(healthy_threshold good polls)------------------> healthy
//
// Watch (only while healthy): one WatchKvEventsStream; snapshot -> Reset,
// STORED -> Store, EVICTED -> Evict. When it ends (worker gone, sequence gap,
// slow watcher cut off) the worker's index entries are dropped and the stream
// reopens after a capped, jittered exponential backoff; on ejection it is
// closed, and it reopens at once on re-admission.
#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/api/grpc_status.h"
#include "common/logging.h"
#include "router/worker_pool_impl.h"

namespace tessera::router {
namespace {

std::string Describe(absl::string_view call, const grpc::Status& s) {
  return absl::StrCat(call, ": ", api::StatusCodeName(s.error_code()), ": ", s.error_message());
}

std::span<const uint64_t> Hashes(const v1::KvEvent& event) {
  return std::span<const uint64_t>(event.block_hashes().data(),
                                   static_cast<size_t>(event.block_hashes_size()));
}

void ApplyBatch(PrefixIndex& index, WorkerSlot slot, const v1::KvEventBatch& batch) {
  if (batch.snapshot()) {
    if (batch.events_size() == 1 && batch.events(0).kind() == v1::KvEvent::KIND_STORED) {
      index.Reset(slot, Hashes(batch.events(0)));  // the usual shape: one STORED event
      return;
    }
    absl::flat_hash_set<uint64_t> held;
    for (const v1::KvEvent& event : batch.events()) {
      for (uint64_t h : event.block_hashes()) {
        if (event.kind() == v1::KvEvent::KIND_STORED) held.insert(h);
        if (event.kind() == v1::KvEvent::KIND_EVICTED) held.erase(h);
      }
    }
    const std::vector<uint64_t> hashes(held.begin(), held.end());
    index.Reset(slot, hashes);
    return;
  }
  for (const v1::KvEvent& event : batch.events()) {
    switch (event.kind()) {
      case v1::KvEvent::KIND_STORED:
        index.Store(slot, Hashes(event));
        break;
      case v1::KvEvent::KIND_EVICTED:
        index.Evict(slot, Hashes(event));
        break;
      default:
        break;  // unknown kinds (a newer worker) carry nothing we can use
    }
  }
}

}  // namespace

// ---- views of one entry ----------------------------------------------------

bool WorkerPool::Impl::EligibleLocked(const WorkerRecord& e, absl::Time now) {
  return !e.removed && e.healthy && !e.admin_draining && !e.leaving &&
         !(e.has_report && e.report.draining()) && e.breaker.WouldAllow(now);
}

v1::WorkerInfo::State WorkerPool::Impl::StateLocked(const WorkerRecord& e, absl::Time now) {
  // Out of service beats draining: a drained worker that died shows UNHEALTHY.
  const bool circuit_open =
      e.breaker.state() == CircuitBreaker::State::kOpen && !e.breaker.WouldAllow(now);
  if (!e.healthy || circuit_open) return v1::WorkerInfo::STATE_UNHEALTHY;
  if (e.admin_draining || e.leaving || (e.has_report && e.report.draining())) {
    return v1::WorkerInfo::STATE_DRAINING;
  }
  return v1::WorkerInfo::STATE_HEALTHY;
}

int64_t WorkerPool::Impl::LoadLocked(const WorkerRecord& e) {
  const int64_t reported =
      e.has_report ? int64_t{e.report.running()} + int64_t{e.report.waiting()} : 0;
  return std::max(e.in_flight.load(std::memory_order_acquire), reported);
}

v1::WorkerInfo WorkerPool::Impl::InfoLocked(const WorkerRecord& e, absl::Time now) {
  v1::WorkerInfo info;
  info.set_id(e.id);
  info.set_address(e.address);
  info.set_state(StateLocked(e, now));
  info.set_source(e.source);
  if (e.has_report) *info.mutable_load() = e.report;
  info.set_requests_routed(e.requests_routed.load(std::memory_order_relaxed));
  // Failed health polls while they are what keeps it out, else failed requests.
  info.set_consecutive_failures(std::max(e.poll_failures, e.breaker.consecutive_failures()));
  info.set_in_flight(e.in_flight.load(std::memory_order_acquire));
  info.set_last_error(e.last_error);
  info.set_block_size(e.has_report ? e.report.block_size() : 0);
  return info;
}

// ---- poll ------------------------------------------------------------------

void WorkerPool::Impl::Poll(const EntryPtr& e) {
  const absl::Time now = absl::Now();
  std::string retire;
  auto call = std::make_shared<PollCall>();
  std::shared_ptr<const Op> op;
  {
    absl::MutexLock lock(&e->mu);
    if (e->removed) return;
    if (e->source == v1::WorkerInfo::SOURCE_REGISTERED &&
        now - e->last_heartbeat > options.registration_ttl) {
      retire = absl::StrCat("no heartbeat for ", absl::FormatDuration(now - e->last_heartbeat));
    } else if (e->leaving && e->in_flight.load() == 0) {
      retire = "no longer listed, and idle";
    } else if (e->leaving && now >= e->leave_deadline) {
      retire = absl::StrCat("no longer listed, and the drain grace ran out");
    } else {
      call->started = now;
      call->load_context.set_deadline(absl::ToChronoTime(now + options.health_timeout));
      e->poll = call;
      op = NewOp(e, call);
    }
  }
  if (!retire.empty()) {
    RemoveIfCurrent(e, retire);
    return;
  }
  e->stub->async()->GetLoad(&call->load_context, &call->load_request, &call->report,
                            [this, op](grpc::Status s) {
                              op->poll()->load_status = std::move(s);
                              OnLoad(op->entry(), op->poll());
                            });
}

void WorkerPool::Impl::OnLoad(const EntryPtr& e, const std::shared_ptr<PollCall>& call) {
  bool need_models = false;
  std::shared_ptr<const Op> op;
  {
    absl::MutexLock lock(&e->mu);
    if (e->removed) return;
    need_models = call->load_status.ok() &&
                  (!e->model.has_value() || e->text == nullptr || e->refresh_model ||
                   (!call->report.model().empty() && call->report.model() != e->model->id()));
    if (need_models) {
      call->models_context.set_deadline(absl::ToChronoTime(absl::Now() + options.health_timeout));
      op = NewOp(e, call);  // while the caller's op lasts: the count never drops to 0 between
    }
  }
  if (!need_models) {
    FinishPoll(e, call);
    return;
  }
  e->llm->async()->ListModels(&call->models_context, &call->models_request, &call->models,
                              [this, op](grpc::Status s) {
                                op->poll()->models_status = std::move(s);
                                AfterModels(op->entry(), op->poll());
                              });
}

void WorkerPool::Impl::AfterModels(const EntryPtr& e, const std::shared_ptr<PollCall>& call) {
  if (!call->models_status->ok() || call->models.models_size() == 0) {
    FinishPoll(e, call);
    return;
  }
  const v1::ModelInfo& info = call->models.models(0);
  // Absurd or pinned-out values are refused in FinishPoll: nothing to fetch.
  const ClusterParams params{call->report.block_size(), info};
  bool done = !ValidateReportedParams(params).ok();
  if (!done && !info.tokenizer_hash().empty()) {
    absl::ReaderMutexLock lock(&mu);
    done = !Disagreement(params, vote.pin(), std::nullopt).empty();
    // A tokenizer already loaded (the cluster's, or another worker's).
    call->text = vote.FindText(info.tokenizer_hash());
    done = done || call->text != nullptr;
  }
  if (done) {
    FinishPoll(e, call);
    return;
  }
  if (info.tokenizer_hash().empty()) {  // the byte tokenizer: nothing to fetch
    absl::StatusOr<std::shared_ptr<const ModelText>> text =
        ModelText::Load({}, std::nullopt, info.vocab_size());
    if (text.ok()) {
      call->text = *std::move(text);
    } else {
      call->text_error = std::string(text.status().message());
    }
    FinishPoll(e, call);
    return;
  }
  std::shared_ptr<const Op> op;
  {
    absl::MutexLock lock(&e->mu);
    if (e->removed) return;
    call->tokenizer_context.set_deadline(
        absl::ToChronoTime(absl::Now() + std::max(options.health_timeout, absl::Seconds(30))));
    op = NewOp(e, call);
  }
  e->stub->async()->GetTokenizer(
      &call->tokenizer_context, &call->tokenizer_request, &call->tokenizer_response,
      [this, op](grpc::Status s) {
        PollCall* const poll = op->poll().get();
        // Parses the files on this gRPC thread (once per new tokenizer hash).
        if (!s.ok()) {
          poll->text_error = Describe("GetTokenizer", s);
        } else {
          absl::StatusOr<std::shared_ptr<const ModelText>> text =
              ModelText::FromProto(poll->tokenizer_response, poll->models.models(0).vocab_size());
          if (text.ok()) {
            poll->text = *std::move(text);
          } else {
            poll->text_error = absl::StrCat("its tokenizer: ", text.status().message());
          }
          poll->tokenizer_response.Clear();
        }
        FinishPoll(op->entry(), op->poll());
      });
}

void WorkerPool::Impl::FinishPoll(const EntryPtr& e, const std::shared_ptr<PollCall>& call) {
  const absl::Time now = absl::Now();
  std::shared_ptr<KvWatchStream> to_cancel, to_start;
  {
    absl::MutexLock lock(&mu);
    absl::MutexLock elock(&e->mu);
    if (e->removed) return;
    if (e->poll == call) e->poll = nullptr;
    std::string error;
    bool refused = false;
    if (!call->load_status.ok()) {
      error = Describe("GetLoad", call->load_status);
    } else {
      e->report = call->report;
      e->has_report = true;
      if (call->models_status.has_value()) {
        if (!call->models_status->ok()) {
          error = Describe("ListModels", *call->models_status);
        } else if (call->models.models_size() == 0) {
          error = "ListModels: the worker lists no model";
        } else {
          e->model = call->models.models(0);
          e->text = call->text;
          e->refresh_model = false;
        }
      }
    }
    // It answered: its parameters are checked and counted.
    if (error.empty()) error = JudgeParamsLocked(*e, call->text_error, now, &refused);
    if (error.empty() && e->report.stalled()) {
      refused = true;  // out of rotation at once; its next good poll re-admits it
      error = absl::StrCat("stalled: its replica's current step has run ",
                           absl::FormatDuration(absl::Seconds(e->report.stall_seconds())),
                           ", far past its recent steps (a rank may be hung)");
    }
    if (error.empty()) {
      e->poll_failures = 0;
      ++e->poll_successes;
      if (!e->healthy && e->poll_successes >= options.healthy_threshold) {
        e->healthy = true;
        spdlog::info("worker {} ({}) is in rotation", e->id, e->address);
        to_start = NewWatchLocked(e);
      }
    } else {
      e->poll_successes = 0;
      ++e->poll_failures;
      const bool new_error = error != e->last_error;
      e->last_error = error;
      if (!call->load_status.ok() && e->poll_failures >= options.unhealthy_threshold) {
        vote.SetReachable(e->slot, false);  // its vote stays, as a tie-breaker only
        ElectLocked(absl::StrCat("worker ", e->id, " fails its health checks"));
      }
      if (e->healthy && (refused || e->poll_failures >= options.unhealthy_threshold)) {
        e->healthy = false;
        spdlog::warn("worker {} ({}) ejected: {}", e->id, e->address, error);
        to_cancel = std::move(e->watch);
        e->watch = nullptr;
        ++e->watch_epoch;
        index.RemoveWorker(e->slot);
      } else if (!e->healthy && new_error) {
        spdlog::warn("worker {} ({}) is not in rotation: {}", e->id, e->address, error);
      }
    }
    scheduler.Schedule(std::max(now, call->started + options.health_interval),
                       [this, e] { Poll(e); });
  }
  if (to_cancel != nullptr) to_cancel->Cancel();
  if (to_start != nullptr) to_start->Start(e->stub.get());
}

// ---- KV watch --------------------------------------------------------------

std::shared_ptr<KvWatchStream> WorkerPool::Impl::NewWatchLocked(const EntryPtr& e) {
  if (!options.watch_kv_events || e->removed || !e->healthy || e->watch != nullptr) {
    return nullptr;
  }
  const uint64_t epoch = ++e->watch_epoch;
  // The op ends when the stream is destroyed (after on_done, or unstarted).
  std::shared_ptr<const Op> op = NewOp(e);
  KvWatchStream::Callbacks callbacks;
  callbacks.on_batch = [this, op, epoch](const v1::KvEventBatch& batch) {
    return OnKvBatch(op->entry(), epoch, batch);
  };
  callbacks.on_done = [this, op, epoch](const absl::Status& status, bool got_snapshot) {
    OnWatchDone(op->entry(), epoch, status, got_snapshot);
  };
  e->watch = std::make_shared<KvWatchStream>(std::move(callbacks));
  return e->watch;
}

void WorkerPool::Impl::ReconnectWatch(const EntryPtr& e, uint64_t epoch) {
  std::shared_ptr<KvWatchStream> w;
  {
    absl::MutexLock lock(&e->mu);
    if (e->watch_epoch != epoch) return;  // superseded (re-admitted, ejected, removed)
    w = NewWatchLocked(e);
  }
  if (w != nullptr) w->Start(e->stub.get());
}

bool WorkerPool::Impl::OnKvBatch(const EntryPtr& e, uint64_t epoch, const v1::KvEventBatch& batch) {
  absl::MutexLock lock(&e->mu);
  // Under e->mu: removal / ejection (which drop the slot's entries) cannot
  // interleave with this write.
  if (e->removed || e->watch_epoch != epoch) return false;
  if (batch.snapshot() && e->watch_backoff != options.watch_backoff_initial) {
    spdlog::info("worker {} ({}): KV event watch re-established", e->id, e->address);
  }
  if (batch.snapshot()) e->watch_backoff = options.watch_backoff_initial;
  ApplyBatch(index, e->slot, batch);
  return true;
}

void WorkerPool::Impl::OnWatchDone(const EntryPtr& e, uint64_t epoch, const absl::Status& status,
                                   bool got_snapshot) {
  absl::MutexLock lock(&e->mu);
  if (e->removed || e->watch_epoch != epoch) return;  // we closed it on purpose
  e->watch = nullptr;
  index.RemoveWorker(e->slot);  // its blocks are unknown until the next snapshot
  if (got_snapshot) e->watch_backoff = options.watch_backoff_initial;
  const absl::Duration delay = Jitter(e->watch_backoff);
  e->watch_backoff = std::min(e->watch_backoff * 2, options.watch_backoff_max);
  const uint64_t next = ++e->watch_epoch;
  if (got_snapshot) {
    spdlog::warn(
        "worker {} ({}): KV event watch ended ({}); its index entries are dropped, "
        "reconnecting in {}",
        e->id, e->address, status.ToString(), absl::FormatDuration(delay));
  } else {
    spdlog::debug("worker {} ({}): KV event watch failed ({}); retrying in {}", e->id, e->address,
                  status.ToString(), absl::FormatDuration(delay));
  }
  scheduler.Schedule(absl::Now() + delay, [this, e, next] { ReconnectWatch(e, next); });
}

absl::Duration WorkerPool::Impl::Jitter(absl::Duration backoff) {
  absl::MutexLock lock(&rng_mu);
  return backoff * absl::Uniform(rng, 0.5, 1.0);
}

}  // namespace tessera::router
