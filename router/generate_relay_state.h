// Internal to the Generate relay (router/generate_relay.h): the GenerateRelay
// state machine shared by generate_relay.cc (admission, placement, backoff,
// cancellation) and relay_streaming.cc (the upstream stream's reads and
// end, the client's writes). Not for other users.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/api/grpc_status.h"
#include "common/api/sampling_params.h"
#include "common/check.h"
#include "common/logging.h"
#include "grpcpp/alarm.h"
#include "router/continuation.h"
#include "router/generate_relay.h"
#include "router/retry_policy.h"
#include "tessera/v1/worker.grpc.pb.h"

namespace tessera::router::relay_internal {

inline BackoffPolicy Backoff(const RelayOptions& o) {
  BackoffPolicy p;
  p.max_attempts = o.max_attempts;
  p.base = o.retry_backoff;
  p.max = o.max_retry_backoff;
  return p;
}

inline grpc::Status Cancelled() {
  return grpc::Status(grpc::StatusCode::CANCELLED, "the request was cancelled");
}

// One Generate call being relayed. Owned jointly (shared_ptr) by its
// client (the gRPC reactor until the call's OnDone; an HTTP response until
// its End), the upstream attempt
// in progress (until that call's OnDone) and a pending admission callback;
// the backoff alarm only holds a weak_ptr. The destructor returns the
// admission slot: the request ends when both calls are over.
class GenerateRelay final : public Relay, public std::enable_shared_from_this<GenerateRelay> {
 public:
  GenerateRelay(const RelayEnvironment& env, std::chrono::system_clock::time_point deadline,
                v1::GenerateRequest request, std::vector<uint64_t> block_hashes,
                std::string client_request_id, std::unique_ptr<TenantLease> tenant)
      : env_(env),
        deadline_(deadline),
        request_(std::move(request)),
        block_hashes_(std::move(block_hashes)),
        client_request_id_(std::move(client_request_id)),
        choices_(std::max(1, request_.sampling().has_n() ? request_.sampling().n() : 1)),
        arrived_(absl::Now()),
        tenant_(std::move(tenant)),
        requester_(tenant_ != nullptr ? tenant_->requester() : AdmissionController::Requester()),
        delivered_(static_cast<size_t>(choices_)) {
    env_.tracker->Add();
  }

  // The end of the request: both calls are over. Reports it (request log,
  // metrics), then returns the admission slot.
  ~GenerateRelay() {
    bool admitted;
    std::optional<RequestRecord> record;
    {
      absl::MutexLock lock(&mu_);
      admitted = admitted_;
      if (env_.observer != nullptr && started_) record = RecordLocked();
      if (tenant_ != nullptr) tenant_->set_completion_tokens(completion_tokens_);
    }
    if (record.has_value()) env_.observer->OnEnd(*record);
    tenant_.reset();  // settles the tenant's limits
    if (admitted) {
      env_.counters->in_flight.fetch_sub(1);
      env_.admission->Release(requester_.tenant);  // may admit (and start) the next waiter
    }
    env_.tracker->Remove();  // last: the environment may go away after this
  }

  GenerateRelay(const GenerateRelay&) = delete;
  GenerateRelay& operator=(const GenerateRelay&) = delete;

  // Relay.
  void Start(RelayClient* client) override;
  void WriteDone(bool ok) override;
  void Cancel() override { ClientCancelled(); }

  class Downstream;  // the gRPC client

 private:
  class Upstream;

  // gRPC operations decided under mu_ and run after releasing it (they may
  // run reactions that take mu_ again).
  struct Actions {
    std::shared_ptr<Upstream> cancel_upstream;  // TryCancel
    std::shared_ptr<grpc::Alarm> cancel_alarm;
    AdmissionController::Ticket cancel_ticket = 0;
    RelayClient* client = nullptr;
    bool write = false;                      // Deliver(&writing_)
    std::optional<grpc::Status> finish;      // End
    std::shared_ptr<Upstream> read;          // StartRead
    std::shared_ptr<Upstream> release_hold;  // RemoveHold
  };
  void Run(Actions& actions);
  // Calls Finish once the end is decided and no write is in flight.
  void MaybeFinishLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decides the end (first decision wins) and enters kEnded.
  void EndLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!final_status_.has_value()) final_status_ = std::move(status);
    phase_ = Phase::kEnded;
  }

  // What the request log and the metrics get at the end.
  RequestRecord RecordLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A final message (one per choice) is being delivered: its usage and reason.
  void NoteFinalLocked(const v1::GenerateResponse& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++finals_;
    finish_reason_ = m.finish_reason();
    prompt_tokens_ = m.usage().prompt_tokens();
    cached_tokens_ = m.usage().cached_prompt_tokens();
    completion_tokens_ += m.usage().completion_tokens();
  }

  // Events.
  void Admitted(absl::Status status);
  void PlaceAndStart();
  void UpstreamRead(bool ok);
  void UpstreamDone(const grpc::Status& status);
  void ClientCancelled();
  void BackoffDone();
  void ScheduleRetry(absl::Duration delay);
  // The attempt on `worker` failed (`error`) after output reached the
  // client: sets up its continuation (kBackoff; returns the delay before it
  // is placed) or ends the request (router/continuation.h, DecideFailover).
  std::optional<absl::Duration> FailOverLocked(const std::string& worker, const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RelayEnvironment env_;
  const std::chrono::system_clock::time_point deadline_;  // the client's (max: none)
  const v1::GenerateRequest request_;
  const std::vector<uint64_t> block_hashes_;
  const std::string client_request_id_;
  const int choices_;  // SamplingParams.n: the stream is complete after this many final messages
  const absl::Time arrived_;
  std::unique_ptr<TenantLease> tenant_;  // null: the default tenant, no limits
  const AdmissionController::Requester requester_;

  // Where the request is (generate_relay.h). Transitions:
  //   kQueued    -> kPlacing (admitted) | kEnded (refused: queue full, timeout, cancel)
  //   kPlacing   -> kStreaming (an attempt started) | kEnded (no worker, client gone)
  //   kStreaming -> kBackoff (failed before any message reached the client, attempts
  //                 left; or after, to be continued: router/continuation.h) | kEnded
  //   kBackoff   -> kPlacing (the timer fired) | kEnded (client gone)
  // upstream_ is set exactly in kStreaming. The downstream side (a write in
  // flight, the Finish) is orthogonal: Finish is called in kEnded once no
  // write is in flight.
  enum class Phase { kQueued, kPlacing, kStreaming, kBackoff, kEnded };

  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kQueued;
  RelayClient* client_ ABSL_GUARDED_BY(mu_) = nullptr;  // valid until End is called
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  v1::GenerateResponse writing_;                                   // owned by the write in flight
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;                    // the client went away
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);  // set in kEnded
  // Admission.
  AdmissionController::Ticket ticket_ ABSL_GUARDED_BY(mu_) = 0;  // while queued
  bool admitted_ ABSL_GUARDED_BY(mu_) = false;  // holds a slot (released by the destructor)
  // The attempt in progress. While `hold_` is set, the upstream call cannot
  // end (ClientReadReactor::AddHold), so StartRead from the downstream's
  // reactions is safe; exactly one of read_pending_ / write_in_flight_ holds.
  std::shared_ptr<Upstream> upstream_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  // Retries.
  std::shared_ptr<grpc::Alarm> alarm_ ABSL_GUARDED_BY(mu_);  // kBackoff's timer
  std::vector<std::string> tried_ ABSL_GUARDED_BY(mu_);
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status last_failure_ ABSL_GUARDED_BY(mu_);  // with the worker's id in the message
  // Failover: the continuations started, and the next attempt's request
  // while one is pending (kBackoff after a mid-stream failure, until
  // PlaceAndStart hands it to the attempt).
  int failovers_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<v1::GenerateRequest> continuation_ ABSL_GUARDED_BY(mu_);
  // The backoff ended while the failed attempt's last write was in flight:
  // WriteDone places the continuation (so its reads never overtake a write).
  bool place_after_write_ ABSL_GUARDED_BY(mu_) = false;
  // What reached the client: per choice (GenerateResponse.index) its tokens
  // and whether its final message did, which a continuation resumes after.
  int64_t delivered_messages_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t delivered_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<DeliveredChoice> delivered_ ABSL_GUARDED_BY(mu_);  // choices_ of them
  int finals_ ABSL_GUARDED_BY(mu_) = 0;  // messages with a finish reason (one per choice)
  // For the request log and the metrics (set a few times per request).
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration queue_wait_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> first_token_ ABSL_GUARDED_BY(mu_);
  int finish_reason_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t prompt_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t completion_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t cached_tokens_ ABSL_GUARDED_BY(mu_) = 0;
};

// The gRPC client: the Llm.Generate call's write reactor. Owned by gRPC
// (deleted in OnDone).
class GenerateRelay::Downstream : public grpc::ServerWriteReactor<v1::GenerateResponse>,
                                  public RelayClient {
 public:
  Downstream(std::shared_ptr<GenerateRelay> relay, grpc::CallbackServerContext* context)
      : relay_(std::move(relay)), context_(context) {}
  void Deliver(const v1::GenerateResponse* message) override { StartWrite(message); }
  void End(grpc::Status status) override {
    // The admission queue was full: tell the client when to come back (as
    // the HTTP API's Retry-After).
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      context_->AddTrailingMetadata("retry-after", "1");
    }
    Finish(std::move(status));
  }
  void OnWriteDone(bool ok) override { relay_->WriteDone(ok); }
  void OnCancel() override { relay_->ClientCancelled(); }
  void OnDone() override { delete this; }

 private:
  const std::shared_ptr<GenerateRelay> relay_;
  grpc::CallbackServerContext* const context_;  // valid until OnDone
};

// One attempt: the Worker.Generate call on a leased worker. Owned by the
// relay's upstream_ (shared_ptr) until its OnDone.
class GenerateRelay::Upstream : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  // `continuation`: this attempt's request when it continues the stream
  // (router/continuation.h); none: the relay's request.
  Upstream(std::shared_ptr<GenerateRelay> relay, Lease lease,
           std::optional<v1::GenerateRequest> continuation)
      : relay_(std::move(relay)),
        continuation_(std::move(continuation)),
        lease_(std::move(lease)) {}

  // Starts the call with one hold (released by the relay) and the first
  // read. `request` (the relay's) must outlive the call.
  void Start(const v1::GenerateRequest* request, std::chrono::system_clock::time_point deadline) {
    context_.set_deadline(deadline);
    lease_.stub()->async()->Generate(&context_,
                                     continuation_.has_value() ? &*continuation_ : request, this);
    AddHold();
    StartRead(&response);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }
  const Lease& lease() const { return lease_; }

  void OnReadDone(bool ok) override { relay_->UpstreamRead(ok); }
  void OnDone(const grpc::Status& status) override {
    // The relay drops its reference to this attempt in UpstreamDone; keep the
    // relay alive past that and touch nothing of `this` afterwards.
    const std::shared_ptr<GenerateRelay> relay = relay_;
    relay->UpstreamDone(status);
  }

  v1::GenerateResponse response;  // the read in flight

 private:
  // Destroyed in reverse order: the context (the call) before the lease
  // (which keeps the channel alive), the relay last.
  const std::shared_ptr<GenerateRelay> relay_;
  const std::optional<v1::GenerateRequest> continuation_;
  Lease lease_;
  grpc::ClientContext context_;
};

}  // namespace tessera::router::relay_internal
