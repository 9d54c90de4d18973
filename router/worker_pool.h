// The router's view of its workers (replica leaders): membership, health,
// load, drain state, circuit breakers, and the KV-block index for placement.
//
// Membership comes from four sources (WorkerInfo::Source): --workers (STATIC),
// registration by `tessera-worker --router` (REGISTERED), the Admin API
// (ADMIN) and dns:/// discovery (DNS, via SyncSource).
//
// Per worker the pool runs, on its own threads / gRPC async callbacks:
//   - a health-and-load poll every `health_interval`: Worker.GetLoad with
//     deadline `health_timeout` (a worker that answers GetLoad is serving; the
//     LoadReport also gives running/waiting/KV use/hit-rate counters/draining).
//     `unhealthy_threshold` consecutive failures eject it (UNHEALTHY, out of
//     rotation); `healthy_threshold` consecutive successes re-admit it.
//   - a WatchKvEvents stream feeding the PrefixIndex (snapshot, then changes),
//     reconnected with backoff; while it is down the worker's index entries are
//     dropped (RemoveWorker), so placement never trusts stale blocks.
// Request outcomes feed a per-worker CircuitBreaker (RecordOutcome).
//
// A worker is eligible for new requests when it is HEALTHY (polled OK),
// not draining (admin drain here, or the worker's own LoadReport.draining),
// and its breaker allows a request.
//
// Removal and draining never cut in-flight requests: a Lease keeps the
// worker's channel and stub alive until the request ends.
//
// Thread-safe. Every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/api/cluster_auth.h"
#include "common/model_text.h"
#include "grpcpp/grpcpp.h"
#include "router/circuit_breaker.h"
#include "router/cluster_params.h"
#include "router/policy.h"
#include "router/prefix_index.h"
#include "tessera/v1/admin.pb.h"
#include "tessera/v1/llm.pb.h"
#include "tessera/v1/worker.grpc.pb.h"

namespace tessera::router {

struct WorkerPoolOptions {
  absl::Duration health_interval = absl::Milliseconds(500);
  absl::Duration health_timeout = absl::Milliseconds(1000);
  int unhealthy_threshold = 2;  // consecutive failed polls -> ejected
  int healthy_threshold = 1;    // consecutive good polls -> re-admitted
  CircuitBreaker::Options breaker;
  bool watch_kv_events =
      true;  // off: no PrefixIndex feed (round_robin / least_load only need load)
  // Registered workers that send no heartbeat for this long are removed.
  absl::Duration registration_ttl = absl::Seconds(10);
  // Registrations (Register) that would add a worker are refused with
  // RESOURCE_EXHAUSTED beyond `max_registered_workers` registered workers at
  // once, or beyond `registration_rate` per second (bursts of up to
  // `registration_burst`). A worker registering again is not counted.
  int max_registered_workers = 256;
  double registration_rate = 10;
  int registration_burst = 20;
  // Cluster parameters the operator fixed (the router's flags); the others
  // are voted by the workers (router/cluster_params.h).
  ClusterParamsPin cluster_params;
  // A broken WatchKvEvents stream is reopened after a capped exponential
  // backoff with jitter (a random delay in [backoff/2, backoff]); the backoff
  // restarts from `watch_backoff_initial` once a stream delivers its
  // snapshot. While a worker is ejected no stream is open; it reopens at once
  // on re-admission.
  absl::Duration watch_backoff_initial = absl::Milliseconds(100);
  absl::Duration watch_backoff_max = absl::Seconds(5);
  // The cluster credential the default channels use: the token on every
  // call, mTLS when configured (common/api/cluster_channel.h).
  api::ClusterCredentials cluster;
  // Channel factory (tests may inject in-process channels); default:
  // api::CreateClusterChannel(address, cluster, args)
  // with a short reconnect backoff (100 ms initial, 1 s max, so a restarted
  // worker is seen by the next polls) and no receive size limit (KV
  // snapshots).
  std::function<std::shared_ptr<grpc::Channel>(const std::string& address)> make_channel;
};

class WorkerPool;

// One request's hold on a worker, from placement to the end of its stream.
// Keeps the worker's stub alive after removal; the destructor decrements the
// worker's in-flight count. Call RecordOutcome once the outcome is known (a
// Lease that carried a circuit breaker's half-open probe and is destroyed
// without an outcome gives the probe back). A Lease may outlive its
// WorkerPool. Not thread-safe (one owner); different Leases are independent.
// One worker's record in the pool (address, stubs, health, load, breaker):
// defined in worker_pool_impl.h.
struct WorkerRecord;

class Lease {
 public:
  Lease(Lease&&) noexcept;
  Lease& operator=(Lease&&) noexcept;
  ~Lease();

  const std::string& worker_id() const;
  const std::string& address() const;
  v1::Worker::Stub* stub() const;  // valid while the Lease lives
  // The worker's PrefixIndex slot. Slots are reused after removal: meaningful
  // only while the worker is still in the pool.
  WorkerSlot slot() const;
  // Why the policy chose this worker, and how many leading prompt blocks it
  // held then (0 when the policy does not look at prefixes).
  PlacementReason reason() const { return reason_; }
  int matched_blocks() const { return matched_blocks_; }

 private:
  friend class WorkerPool;
  Lease(std::shared_ptr<WorkerRecord> record, bool probe);
  void Release();
  std::shared_ptr<WorkerRecord> entry_;  // null after a move
  bool probe_ = false;                   // took the breaker's half-open probe
  mutable bool outcome_recorded_ = false;
  PlacementReason reason_ = PlacementReason::kPolicy;
  int matched_blocks_ = 0;
};

// The outcome of a request on a worker, for its circuit breaker and counters.
enum class Outcome {
  kSuccess,      // the stream ended normally (any finish reason, or a client error)
  kWorkerError,  // the worker failed (UNAVAILABLE, INTERNAL, broken stream, ...)
  kRejected,     // the worker refused it (RESOURCE_EXHAUSTED / draining): not a failure
  kCancelled,    // the client went away: no signal about the worker
};

class WorkerPool {
 public:
  WorkerPool(WorkerPoolOptions options, std::unique_ptr<PlacementPolicy> policy);
  ~WorkerPool();  // stops every poll and watch stream, waits for them
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Adds a worker at `address` (host:port). Its id is `id` when given, else
  // the worker's own LoadReport.worker_id when it answers within
  // health_timeout, else the address. A new worker starts UNHEALTHY and
  // joins the rotation after its first good poll.
  //   INVALID_ARGUMENT  `address` is not host:port
  //   ALREADY_EXISTS    a worker with this address or id is known
  // SOURCE_REGISTERED is Register(address, id, "") (a worker without an
  // incarnation). Blocks up to health_timeout when `id` is empty (the id
  // probe).
  absl::StatusOr<v1::WorkerInfo> Add(const std::string& address, v1::WorkerInfo::Source source,
                                     const std::string& id = "");
  // A worker's registration (Registry.RegisterWorker, source REGISTERED):
  // binds `id` (probed as in Add when empty) to (address, incarnation), the
  // random id the worker process picked at start.
  //   - the same id at the same address: its entry, kept (a new incarnation
  //     replaces the old one: the worker restarted there);
  //   - an address known from another source: that entry, unchanged;
  //   - a registered id at another address, or a registered address under
  //     another id: the old entry is replaced only when the incarnation is
  //     the same (the worker moved) or the old entry has failed its health
  //     checks (unhealthy_threshold consecutive failed polls); else
  //     ALREADY_EXISTS, and the old entry keeps serving;
  //   - an id known from another source: ALREADY_EXISTS.
  //   INVALID_ARGUMENT    a bad address, or an incarnation over 64 bytes or
  //                       not printable ASCII
  //   RESOURCE_EXHAUSTED  adding it would pass max_registered_workers or
  //                       the registration rate (the message names which)
  absl::StatusOr<v1::WorkerInfo> Register(const std::string& address, const std::string& id,
                                          const std::string& incarnation);
  // Takes the worker out at once (no new requests; in-flight ones finish on
  // their Lease); stops its poll and watch. NOT_FOUND for an unknown id.
  absl::Status Remove(absl::string_view id);
  // Admin drain: no new requests; in-flight ones finish; visible as DRAINING.
  // NOT_FOUND for an unknown id.
  absl::StatusOr<v1::WorkerInfo> SetDraining(absl::string_view id, bool draining);
  // Makes the set of `source` workers equal `addresses`: adds new ones,
  // drains and then removes (once idle, or after `drain_grace`) the ones no
  // longer listed; one listed again before it left is back in rotation.
  // Addresses known from another source are left alone; invalid ones are
  // logged and skipped. New addresses are probed for their ids in parallel
  // (blocks up to health_timeout). For dns:/// discovery.
  void SyncSource(v1::WorkerInfo::Source source, std::span<const std::string> addresses,
                  absl::Duration drain_grace = absl::Seconds(60));
  // A registered worker's heartbeat, matched on (id, incarnation): false
  // (the worker should register again) when the id is unknown or registered
  // by another incarnation, whose entry it does not keep alive. True for a
  // worker known from another source (it has no registration to keep).
  bool Heartbeat(absl::string_view id, absl::string_view incarnation = "");

  // Places a request: filters eligible workers (minus `exclude`, ids already
  // tried), fills matched blocks when the policy wants them, lets the policy
  // choose, and takes a lease (breaker AllowRequest; in-flight + 1,
  // requests_routed + 1). UNAVAILABLE "no eligible worker (N known: …)" when
  // none is eligible.
  absl::StatusOr<Lease> Place(const PlacementRequest& request,
                              std::span<const std::string> exclude);
  void RecordOutcome(const Lease& lease, Outcome outcome, absl::string_view error = "");

  // The cluster's parameters (router/cluster_params.h): the values pinned
  // by options.cluster_params, the rest from the majority of the workers
  // that answer their polls (LoadReport.block_size, Llm.ListModels, the
  // tokenizer files from Worker.GetTokenizer). A worker reporting a value out
  // of range, or one that differs from the cluster's, is refused (UNHEALTHY,
  // last_error names the field). Forgotten when the last worker leaves the
  // pool (a new set may serve another model).
  // The block size (0 until adopted).
  int block_size() const;
  // The served model (id, max_model_len, vocab_size, limits, tokenizer
  // hash); nullopt until adopted.
  std::optional<v1::ModelInfo> model_info() const;
  // The served model's tokenizer and chat template; set whenever
  // model_info() is.
  std::shared_ptr<const ModelText> model_text() const;

  // State: UNHEALTHY when not admitted by polls (new, ejected, refused) or
  // its circuit is open; else DRAINING when drained here, no longer listed
  // by SyncSource, or reporting draining; else HEALTHY.
  // consecutive_failures: failed polls, or failed requests, whichever is more.
  std::vector<v1::WorkerInfo> List() const;  // sorted by id
  std::optional<v1::WorkerInfo> Get(absl::string_view id) const;
  v1::ClusterStatus Status() const;  // worker counts, sums of loads and counters, policy name
  // Per worker (sorted by id): its state (as List), whether its polls admit
  // it, and its circuit breaker's state. For the router's metrics.
  struct WorkerHealth {
    std::string id;
    v1::WorkerInfo::State state = v1::WorkerInfo::STATE_UNSPECIFIED;
    bool polled_healthy = false;
    CircuitBreaker::State breaker = CircuitBreaker::State::kClosed;
    int64_t in_flight = 0;
  };
  std::vector<WorkerHealth> Health() const;
  // Blocks until the worker `id` is in rotation or `timeout` passes (tests,
  // `tessera add --wait`). False on timeout or unknown id.
  bool WaitEligible(absl::string_view id, absl::Duration timeout) const;

  const PlacementPolicy& policy() const;
  PrefixIndex& index();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::router
