// Internals of WorkerPool shared by its implementation files: worker_pool.cc
// (membership), lease.cc, worker_placement.cc (placement),
// worker_pool_views.cc (listing) and worker_monitor.cc (health/load polls,
// KV-event watch). Not a public interface: include only from those files.
//
// Thread-safety: see the lock order in worker_pool.cc. Entry fields are
// either const, atomic, or guarded by Entry::mu; Impl fields by Impl::mu.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/model_text.h"
#include "grpcpp/grpcpp.h"
#include "router/circuit_breaker.h"
#include "router/cluster_params.h"
#include "router/kv_watch.h"
#include "router/task_scheduler.h"
#include "router/worker_pool.h"
#include "tessera/v1/llm.grpc.pb.h"

namespace tessera::router {

// One health-and-load poll: GetLoad, then (when the worker's model is not yet
// known, or changed) Llm.ListModels. Shared by the RPC callbacks and the
// entry (for cancellation).
struct PollCall {
  void Cancel() {
    load_context.TryCancel();
    models_context.TryCancel();
    tokenizer_context.TryCancel();
  }

  absl::Time started;
  grpc::ClientContext load_context;
  v1::GetLoadRequest load_request;
  v1::LoadReport report;
  grpc::Status load_status;
  grpc::ClientContext models_context;
  v1::ListModelsRequest models_request;
  v1::ListModelsResponse models;
  std::optional<grpc::Status> models_status;  // set when ListModels was called
  // Worker.GetTokenizer, called when the worker's tokenizer hash is new to
  // the pool: its files, loaded (or why not).
  grpc::ClientContext tokenizer_context;
  v1::GetTokenizerRequest tokenizer_request;
  v1::GetTokenizerResponse tokenizer_response;
  std::shared_ptr<const ModelText> text;
  std::string text_error;
};

// One worker. Owned by the pool while it is a member, and shared with its
// RPC callbacks, scheduled tasks and Leases (so it outlives removal while any
// of them runs).
struct WorkerRecord {
  WorkerRecord(std::string id_in, std::string address_in, v1::WorkerInfo::Source source_in,
               WorkerSlot slot_in, std::shared_ptr<grpc::Channel> channel_in,
               const CircuitBreaker::Options& breaker_options)
      : id(std::move(id_in)),
        address(std::move(address_in)),
        source(source_in),
        slot(slot_in),
        channel(std::move(channel_in)),
        stub(v1::Worker::NewStub(channel)),
        llm(v1::Llm::NewStub(channel)),
        breaker(breaker_options) {}

  const std::string id;
  const std::string address;
  const v1::WorkerInfo::Source source;
  const WorkerSlot slot;
  const std::shared_ptr<grpc::Channel> channel;
  const std::unique_ptr<v1::Worker::Stub> stub;
  const std::unique_ptr<v1::Llm::Stub> llm;
  std::atomic<int64_t> in_flight{0};  // live Leases
  std::atomic<int64_t> requests_routed{0};

  mutable absl::Mutex mu;
  bool removed ABSL_GUARDED_BY(mu) = false;  // out of the pool; nothing new starts
  // Admitted by polls (UNHEALTHY until the first good polls; ejected after
  // failed ones, or at once when refused for a block size / model mismatch).
  bool healthy ABSL_GUARDED_BY(mu) = false;
  int poll_failures ABSL_GUARDED_BY(mu) = 0;   // consecutive
  int poll_successes ABSL_GUARDED_BY(mu) = 0;  // consecutive
  bool admin_draining ABSL_GUARDED_BY(mu) = false;
  // SyncSource: no longer listed; removed once idle or at leave_deadline.
  bool leaving ABSL_GUARDED_BY(mu) = false;
  absl::Time leave_deadline ABSL_GUARDED_BY(mu);
  absl::Time last_heartbeat ABSL_GUARDED_BY(mu);  // REGISTERED only
  // REGISTERED only: the random id the worker process picked at start (empty
  // from workers that predate it). Heartbeats must carry it; a registration
  // of this id from another address must carry it too, unless this entry
  // has failed its health checks. Never shown (it proves the identity).
  std::string incarnation ABSL_GUARDED_BY(mu);
  // Set when a new incarnation registered at this address: the next poll
  // reads the worker's model again (the process restarted, maybe changed).
  bool refresh_model ABSL_GUARDED_BY(mu) = false;
  bool has_report ABSL_GUARDED_BY(mu) = false;
  v1::LoadReport report ABSL_GUARDED_BY(mu);  // the last successful poll
  std::optional<v1::ModelInfo> model ABSL_GUARDED_BY(mu);
  std::shared_ptr<const ModelText> text ABSL_GUARDED_BY(mu);  // its tokenizer, once loaded
  std::string last_error ABSL_GUARDED_BY(mu);
  CircuitBreaker breaker ABSL_GUARDED_BY(mu);
  std::shared_ptr<PollCall> poll ABSL_GUARDED_BY(mu);        // in flight
  std::shared_ptr<KvWatchStream> watch ABSL_GUARDED_BY(mu);  // open
  // Bumped whenever a watch stream opens, is dropped, or a reconnect is
  // scheduled: callbacks and tasks of older epochs do nothing.
  uint64_t watch_epoch ABSL_GUARDED_BY(mu) = 0;
  absl::Duration watch_backoff ABSL_GUARDED_BY(mu);
};

struct WorkerPool::Impl {
  using EntryPtr = std::shared_ptr<WorkerRecord>;

  // RPCs to cancel once the locks are released.
  struct Cancels {
    void Run();
    std::vector<std::shared_ptr<PollCall>> polls;
    std::vector<std::shared_ptr<KvWatchStream>> watches;
  };
  struct Probe {  // Add's / SyncSource's GetLoad to learn a worker's id
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    v1::LoadReport report;
    grpc::Status status;
  };

  Impl(WorkerPoolOptions o, std::unique_ptr<PlacementPolicy> p);
  // Removes every worker, cancels their RPCs, stops the scheduler and waits
  // for the last RPC callback.
  void Shutdown();

  // ---- membership (worker_pool.cc)
  absl::StatusOr<v1::WorkerInfo> Add(const std::string& address, v1::WorkerInfo::Source source,
                                     const std::string& id);
  // The worker's own id from a GetLoad when it answers in time, else its
  // address (blocks up to health_timeout).
  std::string ProbeId(const std::string& address, const std::shared_ptr<grpc::Channel>& channel);
  void SyncSource(v1::WorkerInfo::Source source, std::span<const std::string> addresses,
                  absl::Duration drain_grace);
  // For a source other than REGISTERED: nullopt when neither `address` nor
  // `id` is known, else ALREADY_EXISTS naming the entry that has it.
  std::optional<absl::Status> CheckConflictLocked(const std::string& address,
                                                  const std::string& id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu);
  v1::WorkerInfo InsertLocked(const std::string& address, v1::WorkerInfo::Source source,
                              const std::string& id, std::shared_ptr<grpc::Channel> channel,
                              const std::string& incarnation = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // ---- registration (worker_registration.cc)
  // What a registration of (address, id, incarnation) does to the entries
  // that hold its address or id: `settled` is the answer when it adds
  // nothing (the same worker again: its entry, refreshed; or
  // ALREADY_EXISTS), else `replace` lists the entries it takes over.
  struct RegistrationPlan {
    std::optional<absl::StatusOr<v1::WorkerInfo>> settled;
    std::vector<std::pair<EntryPtr, std::string>> replace;  // entry, why
  };
  RegistrationPlan PlanRegistrationLocked(const std::string& address, const std::string& id,
                                          const std::string& incarnation, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Whether a registration from `address` carrying `incarnation` may take
  // over `e`: the same incarnation, the same address, or `e` has failed its
  // health checks (unhealthy_threshold consecutive failed polls).
  bool MayTakeOverLocked(const WorkerRecord& e, const std::string& address,
                         const std::string& incarnation) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu);
  // RESOURCE_EXHAUSTED when adding a registered worker (after removing
  // `replacing` registered ones) would pass max_registered_workers, or
  // (with `take_token`) the registration rate; takes a token when not.
  absl::Status CheckRegistrationLimitsLocked(int replacing, absl::Time now, bool take_token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::StatusOr<v1::WorkerInfo> Register(const std::string& address, const std::string& id,
                                          const std::string& incarnation);

  // ---- cluster parameters (worker_cluster_params.cc)
  // After a poll that reached the worker: checks its parameters (ranges,
  // the pin, the cluster's) and updates its vote. The error for the poll
  // (empty: it may serve); `refused` when the parameters are the reason.
  std::string JudgeParamsLocked(WorkerRecord& e, const std::string& text_error, absl::Time now,
                                bool* refused) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu, e.mu);
  // Re-elects the cluster's parameters; logs when they change.
  void ElectLocked(absl::string_view why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // `e` by value: callers often pass a reference into by_id, which this erases.
  void RemoveLocked(EntryPtr e, absl::string_view why, Cancels* cancels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void RemoveIfCurrent(const EntryPtr& e, absl::string_view why) ABSL_LOCKS_EXCLUDED(mu);
  // INVALID_ARGUMENT unless `address` is host:port (worker_pool.cc).
  static absl::Status CheckAddress(const std::string& address);
  // GetLoad on every probe's channel at once; returns when all answered or
  // timed out (health_timeout).
  void ProbeIds(std::vector<Probe>& probes);

  // ---- monitoring (worker_monitor.cc)
  void Poll(const EntryPtr& e);  // scheduler task
  void OnLoad(const EntryPtr& e, const std::shared_ptr<PollCall>& call);
  // After ListModels: fetches the worker's tokenizer files when the pool
  // has no tokenizer of that hash yet (then FinishPoll).
  void AfterModels(const EntryPtr& e, const std::shared_ptr<PollCall>& call);
  void FinishPoll(const EntryPtr& e, const std::shared_ptr<PollCall>& call);
  // A new (not yet started) watch stream when one should run now.
  std::shared_ptr<KvWatchStream> NewWatchLocked(const EntryPtr& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(e->mu);
  void ReconnectWatch(const EntryPtr& e, uint64_t epoch);  // scheduler task
  bool OnKvBatch(const EntryPtr& e, uint64_t epoch, const v1::KvEventBatch& batch);
  void OnWatchDone(const EntryPtr& e, uint64_t epoch, const absl::Status& status,
                   bool got_snapshot);
  absl::Duration Jitter(absl::Duration backoff);

  // ---- views of one entry (worker_monitor.cc)
  static bool EligibleLocked(const WorkerRecord& e, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu);
  static v1::WorkerInfo::State StateLocked(const WorkerRecord& e, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu);
  static int64_t LoadLocked(const WorkerRecord& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu);
  static v1::WorkerInfo InfoLocked(const WorkerRecord& e, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu);

  // Async RPCs in flight: Shutdown waits for zero, so no callback touches a
  // destroyed Impl. An RPC's callback holds its worker's entry through an Op,
  // which ends the op only when the last copy of the callback is destroyed,
  // after letting go of the entry. So once the count is zero no gRPC thread
  // holds an entry, and Shutdown's own thread drops the last references to
  // the workers' channels: a grpc::Channel destroyed last on a gRPC callback
  // thread destroys the callback completion queue that thread runs (a double
  // free at exit, found by ASan in integration_cluster_tls_test).
  void BeginOp();
  void EndOp();
  // A poll's op also holds its PollCall (whose grpc::ClientContexts hold the
  // channel too) and releases it first. (A watch stream's context goes before
  // its callbacks: KvWatchStream's members.)
  class Op {
   public:
    Op(Impl* pool, EntryPtr entry, std::shared_ptr<PollCall> poll)
        : pool_(pool), entry_(std::move(entry)), poll_(std::move(poll)) {
      pool_->BeginOp();
    }
    ~Op() {
      poll_.reset();
      entry_.reset();
      pool_->EndOp();
    }
    Op(const Op&) = delete;
    Op& operator=(const Op&) = delete;
    const EntryPtr& entry() const { return entry_; }
    const std::shared_ptr<PollCall>& poll() const { return poll_; }

   private:
    Impl* const pool_;
    EntryPtr entry_;
    std::shared_ptr<PollCall> poll_;
  };
  // Held by an RPC's callback (copyable, as std::function wants), which
  // reaches the entry and the poll only through it.
  std::shared_ptr<const Op> NewOp(const EntryPtr& e, std::shared_ptr<PollCall> poll = nullptr) {
    return std::make_shared<const Op>(this, e, std::move(poll));
  }
  // Releases the retired entries nothing else holds any more (scheduler task).
  void PruneRetired() ABSL_LOCKS_EXCLUDED(mu);
  // Schedules PruneRetired at `when` unless one is pending or the pool stops.
  void SchedulePruneLocked(absl::Time when) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  WorkerPoolOptions options;
  const std::unique_ptr<PlacementPolicy> policy;
  PrefixIndex index;

  mutable absl::Mutex mu;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  absl::btree_map<std::string, EntryPtr> by_id ABSL_GUARDED_BY(mu);  // sorted: List order
  // The entry named `id`: its pool id, or else the id the worker reports in its
  // LoadReport when exactly one worker reports it (a worker added before it
  // answered is named by its address; operators see the worker's own id in
  // responses). Null when none or ambiguous.
  EntryPtr FindLocked(absl::string_view id) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    auto it = by_id.find(id);
    if (it != by_id.end()) return it->second;
    EntryPtr found;
    for (const auto& [pool_id, e] : by_id) {
      absl::MutexLock elock(&e->mu);
      if (e->has_report && e->report.worker_id() == id) {
        if (found != nullptr) return nullptr;
        found = e;
      }
    }
    return found;
  }
  absl::flat_hash_map<std::string, EntryPtr> by_address ABSL_GUARDED_BY(mu);
  std::vector<WorkerSlot> free_slots ABSL_GUARDED_BY(mu);
  WorkerSlot next_slot ABSL_GUARDED_BY(mu) = 0;
  // The cluster's parameters (block size, model, tokenizer): pinned by
  // options.cluster_params, else voted by the workers.
  ClusterVote vote ABSL_GUARDED_BY(mu){options.cluster_params};
  int registered ABSL_GUARDED_BY(mu) = 0;  // REGISTERED entries
  // Registration rate limit: a token bucket (registration_rate per second,
  // at most registration_burst).
  double registration_tokens ABSL_GUARDED_BY(mu) = 0;
  absl::Time registration_refill ABSL_GUARDED_BY(mu) = absl::InfinitePast();

  // Removed entries, kept until nothing else holds them (a lease, an RPC's
  // Op): then released by PruneRetired on the scheduler's thread, or by
  // Shutdown, never on a gRPC thread (see Op).
  std::vector<EntryPtr> retired ABSL_GUARDED_BY(mu);
  bool prune_scheduled ABSL_GUARDED_BY(mu) = false;

  absl::Mutex ops_mu;
  int64_t ops ABSL_GUARDED_BY(ops_mu) = 0;

  absl::Mutex rng_mu;
  absl::BitGen rng ABSL_GUARDED_BY(rng_mu);

  TaskScheduler scheduler;
};

}  // namespace tessera::router
