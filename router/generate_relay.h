// The router's Generate relay: one client stream (Llm.Generate) relayed from
// the chosen worker's Worker.Generate stream, with admission, placement,
// failover and backpressure.
//
// Life of one request: the phases of GenerateRelay::Phase in the .cc, one
// `switch` per event; retry decisions are the pure pieces of
// router/retry_policy.h (ClassifyAttemptEnd, BackoffPolicy):
//   queued    AdmissionController::Acquire; RESOURCE_EXHAUSTED (queue full),
//             DEADLINE_EXCEEDED (waited --queue-timeout) or CANCELLED end it
//   placing   WorkerPool::Place(block hashes, exclude = workers tried so far)
//   streaming a grpc::ClientReadReactor reads the worker's stream; each message
//             is delivered to the client (RelayClient: the gRPC stream or an
//             HTTP response) and the next read
//             starts only when that write completed: one message in flight
//             each way, so memory per request is bounded and a slow client
//             slows its worker's stream down (HTTP/2 flow control).
//   backoff   the worker failed before any message reached the client: after
//             an exponential backoff with jitter (grpc::Alarm, no blocking) the
//             request is placed again on a worker not tried yet, up to
//             max_attempts attempts in all. Or it failed after output reached
//             the client (failover, router/continuation.h): the request is
//             re-issued to a worker not tried yet as a continuation of the
//             delivered tokens (with n > 1, of each unfinished choice's), up
//             to max_failovers times, and the client's stream goes on without
//             a seam
//   ended     the client's status is decided and Finish is called once no write
//             is in flight
// A worker failure after a message was delivered that is not continued
// (max_failovers reached, no other worker) ends the stream with UNAVAILABLE
// "worker <id> failed after <n> tokens were delivered: <cause>; <why not>".
// Client errors from the worker (INVALID_ARGUMENT, NOT_FOUND, OUT_OF_RANGE,
// FAILED_PRECONDITION, ALREADY_EXISTS) pass through unchanged, never retried.
// A refusal (RESOURCE_EXHAUSTED, or a typed reason: common/api/rejection.h)
// is retried elsewhere without counting against the worker's breaker.
// The client's deadline is the upstream call's deadline; a client cancel
// cancels the upstream call (TryCancel) and a queued request leaves the queue.
// Every attempt's outcome goes to WorkerPool::RecordOutcome (breakers).
//
// Thread-safe: reactions of the two calls, the admission callback and the
// backoff alarm run on gRPC / controller threads; the relay's state is under
// one mutex and gRPC operations are started after it is released.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "router/admission.h"
#include "router/request_log.h"
#include "router/tenants.h"
#include "router/worker_pool.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::router {

struct RelayOptions {
  int max_attempts = 3;                                   // placements per request, >= 1
  absl::Duration retry_backoff = absl::Milliseconds(20);  // before the 2nd attempt; doubles
  absl::Duration max_retry_backoff = absl::Seconds(2);
  // Continuations per request after a worker failed mid-stream (>= 0; 0: a
  // failure after the first token ends the request).
  int max_failovers = 2;
};

// The router's request counters (GetClusterStatus). Thread-safe (atomics).
struct RouterCounters {
  std::atomic<int64_t> in_flight{0};  // admitted and not ended
  std::atomic<int64_t> total{0};      // Generate calls that passed validation
  std::atomic<int64_t> failed{0};     // ended with a worker / placement failure
  std::atomic<int64_t> retried{0};    // placements retried on another worker
  std::atomic<int64_t> continued{0};  // streams continued on another worker after output
                                      // reached the client (mid-stream failover)
};

// Counts live relays, so a shutting-down router can wait until every upstream
// call and timer has finished before it destroys the pool they use.
// Thread-safe.
class RelayTracker {
 public:
  void Add();
  void Remove();
  int64_t live() const;
  int64_t ended() const;  // relays removed so far
  // True when no relay is live, waiting at most `timeout`.
  bool WaitIdle(absl::Duration timeout) const;

 private:
  mutable absl::Mutex mu_;
  int64_t live_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t ended_ ABSL_GUARDED_BY(mu_) = 0;
};

// What a relay reports about its request, for the router's metrics and
// request log: called outside the relay's lock, a few times per request
// (never per message). Implementations are thread-safe and do not block.
class RelayObserver {
 public:
  virtual ~RelayObserver() = default;
  // The admission decision after `waited` in the queue (`status` OK: a slot).
  virtual void OnAdmission(const absl::Status& status, absl::Duration waited) = 0;
  // An attempt was placed on `lease`'s worker (its placement reason and
  // matched prefix blocks).
  virtual void OnPlacement(const Lease& lease) = 0;
  // An attempt on `worker` failed (`outcome` kWorkerError or kRejected) and
  // the request will be placed again elsewhere.
  virtual void OnRetry(const std::string& worker, Outcome outcome) = 0;
  // The request ended (the relay is being destroyed).
  virtual void OnEnd(const RequestRecord& record) = 0;
  // A generation request was refused before it reached a relay (API key,
  // validation, no model yet) with `code`.
  virtual void OnRefused(grpc::StatusCode code) = 0;
};

// What every relay uses; the pointees outlive every relay (the owner waits
// with RelayTracker::WaitIdle before destroying them).
struct RelayEnvironment {
  WorkerPool* pool = nullptr;
  AdmissionController* admission = nullptr;
  RouterCounters* counters = nullptr;
  RelayTracker* tracker = nullptr;
  RelayObserver* observer = nullptr;  // optional
  const char* front_end = "grpc";     // "grpc" or "http", for the observer
  RelayOptions options;
};

// The client end of a relay: a gRPC Llm.Generate stream
// (StartGenerateRelay below) or an HTTP response (router/openai/). The relay
// calls it from gRPC / controller threads, never under its own lock.
class RelayClient {
 public:
  // One message for the client. `message` stays valid, and no other Deliver
  // comes, until the client calls Relay::WriteDone.
  virtual void Deliver(const v1::GenerateResponse* message) = 0;
  // The end of the request: called once, after the last delivered message
  // was acknowledged; the relay touches the client no more afterwards.
  virtual void End(grpc::Status status) = 0;

 protected:
  ~RelayClient() = default;
};

// One request being relayed (generate_relay_state.h), as its client sees it.
// Thread-safe.
class Relay {
 public:
  virtual ~Relay() = default;
  // Starts admission; `client` must stay valid until its End is called.
  // Call once.
  virtual void Start(RelayClient* client) = 0;
  // The delivered message was written (ok) or could not be (the client is
  // gone: the request is cancelled).
  virtual void WriteDone(bool ok) = 0;
  // The client went away: the request is aborted (queued: it leaves the
  // queue; streaming: the upstream call is cancelled), then End follows.
  virtual void Cancel() = 0;
};

// A relay for `request` (validated; prompt as token_ids; request_id set;
// sampling.seed set for an exact continuation: router/continuation.h,
// MakeResumable),
// with the client's `deadline` (system_clock max: none). `block_hashes` are
// the prompt's full-block hashes for placement; `client_request_id` the id
// the client sent (empty: none), for the request log and as the request_id
// of every message delivered to the client (the router's id, request's,
// when empty). `tenant` (null: the default tenant) is the request's hold on
// its tenant's limits (router/tenants.h): its admission waits in that
// tenant's fair-queue lane, and the lease is settled with the completion
// tokens when the relay ends. Nothing starts before Relay::Start.
std::shared_ptr<Relay> CreateGenerateRelay(const RelayEnvironment& env,
                                           std::chrono::system_clock::time_point deadline,
                                           v1::GenerateRequest request,
                                           std::vector<uint64_t> block_hashes,
                                           std::string client_request_id = "",
                                           std::unique_ptr<TenantLease> tenant = nullptr);

// Starts relaying `request` (as CreateGenerateRelay) for the gRPC Generate
// call `context`; returns the reactor to hand to gRPC. A RESOURCE_EXHAUSTED
// end (the admission queue is full) carries trailing metadata
// `retry-after: 1` (seconds).
grpc::ServerWriteReactor<v1::GenerateResponse>* StartGenerateRelay(
    const RelayEnvironment& env, grpc::CallbackServerContext* context, v1::GenerateRequest request,
    std::vector<uint64_t> block_hashes, std::string client_request_id = "",
    std::unique_ptr<TenantLease> tenant = nullptr);

// A reactor that ends the call at once with `status` (a request refused
// before it reached the relay).
grpc::ServerWriteReactor<v1::GenerateResponse>* FinishedGenerateReactor(grpc::Status status);

}  // namespace tessera::router
