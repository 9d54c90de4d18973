#include "router/generate_relay.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/api/grpc_status.h"
#include "common/check.h"
#include "common/logging.h"
#include "grpcpp/alarm.h"
#include "router/retry_policy.h"
#include "tessera/v1/worker.grpc.pb.h"

namespace tessera::router {
namespace {

using api::StatusCodeName;
constexpr auto ToGrpc = api::ToGrpcStatus;

BackoffPolicy Backoff(const RelayOptions& o) {
  BackoffPolicy p;
  p.max_attempts = o.max_attempts;
  p.base = o.retry_backoff;
  p.max = o.max_retry_backoff;
  return p;
}

grpc::Status Cancelled() {
  return grpc::Status(grpc::StatusCode::CANCELLED, "the request was cancelled");
}

// One Generate call being relayed. Owned jointly (shared_ptr) by its
// downstream reactor (until the client call's OnDone), the upstream attempt
// in progress (until that call's OnDone) and a pending admission callback;
// the backoff alarm only holds a weak_ptr. The destructor returns the
// admission slot: the request ends when both calls are over.
class GenerateRelay : public std::enable_shared_from_this<GenerateRelay> {
 public:
  GenerateRelay(const RelayEnvironment& env, grpc::CallbackServerContext* context,
                v1::GenerateRequest request, std::vector<uint64_t> block_hashes)
      : env_(env),
        deadline_(context->deadline()),
        request_(std::move(request)),
        block_hashes_(std::move(block_hashes)) {
    env_.tracker->Add();
  }

  ~GenerateRelay() {
    bool admitted;
    {
      absl::MutexLock lock(&mu_);
      admitted = admitted_;
    }
    if (admitted) {
      env_.counters->in_flight.fetch_sub(1);
      env_.admission->Release();  // may admit (and start) the next waiter
    }
    env_.tracker->Remove();  // last: the environment may go away after this
  }

  GenerateRelay(const GenerateRelay&) = delete;
  GenerateRelay& operator=(const GenerateRelay&) = delete;

  grpc::ServerWriteReactor<v1::GenerateResponse>* Begin();

 private:
  class Downstream;
  class Upstream;

  // gRPC operations decided under mu_ and run after releasing it (they may
  // run reactions that take mu_ again).
  struct Actions {
    std::shared_ptr<Upstream> cancel_upstream;  // TryCancel
    std::shared_ptr<grpc::Alarm> cancel_alarm;
    AdmissionController::Ticket cancel_ticket = 0;
    Downstream* reactor = nullptr;
    bool write = false;                      // StartWrite(&writing_)
    std::optional<grpc::Status> finish;      // Finish
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

  // Events.
  void Admitted(absl::Status status);
  void PlaceAndStart();
  void UpstreamRead(bool ok);
  void UpstreamDone(const grpc::Status& status);
  void WriteDone(bool ok);
  void ClientCancelled();
  void BackoffDone();
  void ScheduleRetry(absl::Duration delay);

  const RelayEnvironment env_;
  const std::chrono::system_clock::time_point deadline_;  // the client's (max: none)
  const v1::GenerateRequest request_;
  const std::vector<uint64_t> block_hashes_;

  // Where the request is (generate_relay.h). Transitions:
  //   kQueued    -> kPlacing (admitted) | kEnded (refused: queue full, timeout, cancel)
  //   kPlacing   -> kStreaming (an attempt started) | kEnded (no worker, client gone)
  //   kStreaming -> kBackoff (failed before any message reached the client, attempts
  //                 left) | kEnded
  //   kBackoff   -> kPlacing (the timer fired) | kEnded (client gone)
  // upstream_ is set exactly in kStreaming. The downstream side (a write in
  // flight, the Finish) is orthogonal: Finish is called in kEnded once no
  // write is in flight.
  enum class Phase { kQueued, kPlacing, kStreaming, kBackoff, kEnded };

  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kQueued;
  Downstream* downstream_ ABSL_GUARDED_BY(mu_) = nullptr;  // valid until Finish is called
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
  // What reached the client.
  int64_t delivered_messages_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t delivered_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  bool saw_final_ ABSL_GUARDED_BY(mu_) = false;  // a message with a finish reason
};

class GenerateRelay::Downstream : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit Downstream(std::shared_ptr<GenerateRelay> relay) : relay_(std::move(relay)) {}
  void OnWriteDone(bool ok) override { relay_->WriteDone(ok); }
  void OnCancel() override { relay_->ClientCancelled(); }
  void OnDone() override { delete this; }

 private:
  const std::shared_ptr<GenerateRelay> relay_;
};

// One attempt: the Worker.Generate call on a leased worker. Owned by the
// relay's upstream_ (shared_ptr) until its OnDone.
class GenerateRelay::Upstream : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  Upstream(std::shared_ptr<GenerateRelay> relay, Lease lease)
      : relay_(std::move(relay)), lease_(std::move(lease)) {}

  // Starts the call with one hold (released by the relay) and the first read.
  void Start(const v1::GenerateRequest* request, std::chrono::system_clock::time_point deadline) {
    context_.set_deadline(deadline);
    lease_.stub()->async()->Generate(&context_, request, this);
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
  Lease lease_;
  grpc::ClientContext context_;
};

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerateRelay::Begin() {
  std::shared_ptr<GenerateRelay> self = shared_from_this();
  auto* reactor = new Downstream(self);
  {
    absl::MutexLock lock(&mu_);
    downstream_ = reactor;
  }
  const AdmissionController::Ticket ticket =
      env_.admission->Acquire([self](absl::Status status) { self->Admitted(std::move(status)); });
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (ticket != 0 && phase_ == Phase::kQueued) {
      ticket_ = ticket;
      // A cancel that came before the ticket was known could not withdraw it.
      if (cancelled_) actions.cancel_ticket = ticket;
    }
  }
  Run(actions);
  return reactor;
}

void GenerateRelay::Run(Actions& a) {
  if (a.cancel_upstream != nullptr) a.cancel_upstream->Cancel();
  if (a.cancel_alarm != nullptr) a.cancel_alarm->Cancel();
  if (a.cancel_ticket != 0) env_.admission->Cancel(a.cancel_ticket);
  if (a.write) a.reactor->StartWrite(&writing_);
  if (a.read != nullptr) a.read->StartRead(&a.read->response);
  if (a.release_hold != nullptr) a.release_hold->RemoveHold();
  if (a.finish.has_value()) a.reactor->Finish(*a.finish);
}

void GenerateRelay::MaybeFinishLocked(Actions& a) {
  if (!final_status_.has_value() || finish_called_ || write_in_flight_ || downstream_ == nullptr) {
    return;
  }
  finish_called_ = true;
  a.reactor = downstream_;
  a.finish = *final_status_;
  downstream_ = nullptr;  // OnDone may follow the Finish at any time
}

void GenerateRelay::Admitted(absl::Status status) {
  Actions actions;
  bool place = false;
  {
    absl::MutexLock lock(&mu_);
    switch (phase_) {
      case Phase::kQueued:
        ticket_ = 0;
        if (!status.ok()) {
          // RESOURCE_EXHAUSTED / DEADLINE_EXCEEDED (counted by the controller),
          // CANCELLED, or UNAVAILABLE at shutdown.
          EndLocked(ToGrpc(status));
          break;
        }
        admitted_ = true;
        env_.counters->in_flight.fetch_add(1);
        if (cancelled_) {
          EndLocked(Cancelled());
        } else {
          phase_ = Phase::kPlacing;
          place = true;
        }
        break;
      case Phase::kPlacing:
      case Phase::kStreaming:
      case Phase::kBackoff:
      case Phase::kEnded:
        TESSERA_CHECK(false, "admission decided twice");
        break;
    }
    MaybeFinishLocked(actions);
  }
  Run(actions);
  if (place) PlaceAndStart();
}

void GenerateRelay::PlaceAndStart() {
  std::vector<std::string> exclude;
  {
    absl::MutexLock lock(&mu_);
    exclude = tried_;
  }
  absl::StatusOr<Lease> lease = env_.pool->Place(PlacementRequest{block_hashes_}, exclude);
  Actions actions;
  std::shared_ptr<Upstream> attempt;
  {
    absl::MutexLock lock(&mu_);
    switch (phase_) {
      case Phase::kPlacing:
        break;
      case Phase::kEnded:  // the client left while we placed
        break;
      case Phase::kQueued:  // not reachable: placing follows admission or a backoff
      case Phase::kStreaming:
      case Phase::kBackoff:
        break;
    }
    if (phase_ == Phase::kEnded) {
      MaybeFinishLocked(actions);
    } else if (!lease.ok()) {
      if (cancelled_) {
        EndLocked(Cancelled());
      } else if (attempts_ == 0) {
        env_.counters->failed.fetch_add(1);
        EndLocked(ToGrpc(lease.status()));
      } else {
        env_.counters->failed.fetch_add(1);
        EndLocked(grpc::Status(
            last_failure_.error_code(),
            absl::StrCat(last_failure_.error_message(),
                         "; no other worker to retry on: ", lease.status().message())));
      }
      MaybeFinishLocked(actions);
    } else if (cancelled_) {
      EndLocked(Cancelled());
      MaybeFinishLocked(actions);
    } else {
      attempt = std::make_shared<Upstream>(shared_from_this(), std::move(*lease));
      phase_ = Phase::kStreaming;
      upstream_ = attempt;
      hold_ = true;
      read_pending_ = true;
      tried_.push_back(attempt->lease().worker_id());
      ++attempts_;
    }
  }
  if (lease.ok() && attempt == nullptr) {
    // Placed, but the client left meanwhile: nothing was sent.
    env_.pool->RecordOutcome(*lease, Outcome::kCancelled);
  }
  Run(actions);
  if (attempt != nullptr) {
    spdlog::debug("request {} -> worker {} (attempt {})", request_.request_id(),
                  attempt->lease().worker_id(), exclude.size() + 1);
    attempt->Start(&request_, deadline_);
  }
}

void GenerateRelay::UpstreamRead(bool ok) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    read_pending_ = false;
    bool relay = false;  // write the message to the client
    switch (phase_) {
      case Phase::kStreaming:
        relay = ok && !cancelled_ && downstream_ != nullptr;
        break;
      case Phase::kQueued:  // not reachable: reads happen only in kStreaming
      case Phase::kPlacing:
      case Phase::kBackoff:
      case Phase::kEnded:
        break;
    }
    if (relay) {
      writing_.Clear();
      writing_.Swap(&upstream_->response);
      ++delivered_messages_;
      delivered_tokens_ += writing_.token_ids_size();
      if (writing_.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) saw_final_ = true;
      write_in_flight_ = true;
      actions.reactor = downstream_;
      actions.write = true;
    } else if (hold_) {
      // The stream is over (or we stop reading it): let the call end.
      hold_ = false;
      actions.release_hold = upstream_;
      if (ok) actions.cancel_upstream = upstream_;
    }
  }
  Run(actions);
}

void GenerateRelay::WriteDone(bool ok) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok) cancelled_ = true;  // the client's stream broke
    switch (phase_) {
      case Phase::kStreaming:
        if (!hold_) break;  // the upstream call is ending; UpstreamDone follows
        if (cancelled_) {
          hold_ = false;
          actions.cancel_upstream = upstream_;
          actions.release_hold = upstream_;
        } else {
          // Backpressure: the next message is read only now.
          read_pending_ = true;
          actions.read = upstream_;
        }
        break;
      case Phase::kEnded:  // the last message was written; Finish may follow
        break;
      case Phase::kQueued:  // not reachable: nothing was relayed yet
      case Phase::kPlacing:
      case Phase::kBackoff:
        break;
    }
    MaybeFinishLocked(actions);
  }
  Run(actions);
}

void GenerateRelay::ClientCancelled() {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    switch (phase_) {
      case Phase::kQueued:
        if (ticket_ != 0) {
          actions.cancel_ticket = ticket_;  // its callback (Admitted) ends the call
          ticket_ = 0;
        }
        break;
      case Phase::kPlacing:  // PlaceAndStart sees kEnded and starts nothing
        EndLocked(Cancelled());
        break;
      case Phase::kStreaming:
        actions.cancel_upstream = upstream_;  // UpstreamDone ends the call
        break;
      case Phase::kBackoff:
        actions.cancel_alarm = alarm_;
        EndLocked(Cancelled());
        break;
      case Phase::kEnded:
        break;
    }
    MaybeFinishLocked(actions);
  }
  Run(actions);
}

void GenerateRelay::UpstreamDone(const grpc::Status& status) {
  Actions actions;
  std::shared_ptr<Upstream> attempt;
  Outcome outcome = Outcome::kSuccess;
  std::string error;
  std::optional<absl::Duration> retry_after;
  {
    absl::MutexLock lock(&mu_);
    attempt = std::move(upstream_);
    hold_ = false;
    read_pending_ = false;
    const std::string& worker = attempt->lease().worker_id();
    TESSERA_CHECK(phase_ == Phase::kStreaming, "an attempt ended outside kStreaming");
    AttemptFacts facts;
    facts.status = status;
    facts.saw_final = saw_final_;
    facts.client_cancelled = cancelled_;
    facts.client_deadline_passed = std::chrono::system_clock::now() >= deadline_;
    std::optional<grpc::Status> failure;
    switch (ClassifyAttemptEnd(facts)) {
      case AttemptEnd::kCompleted:
        outcome = Outcome::kSuccess;
        EndLocked(grpc::Status::OK);
        break;
      case AttemptEnd::kCancelled:
        // The client left, or its own deadline (the upstream call's) passed.
        outcome = Outcome::kCancelled;
        EndLocked(cancelled_ ? Cancelled() : status);
        break;
      case AttemptEnd::kClientError:
        outcome = Outcome::kSuccess;  // the worker did its job
        EndLocked(status);
        break;
      case AttemptEnd::kRejected:
        outcome = Outcome::kRejected;
        failure = status;
        break;
      case AttemptEnd::kWorkerError:
        outcome = Outcome::kWorkerError;
        failure = status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                             "the worker ended the stream without a final message")
                              : status;
        break;
    }
    if (failure.has_value()) {
      error = absl::StrCat(StatusCodeName(failure->error_code()), ": ", failure->error_message());
      last_failure_ =
          grpc::Status(failure->error_code(), absl::StrCat("worker ", worker, ": ", error));
      if (delivered_messages_ > 0) {
        env_.counters->failed.fetch_add(1);
        EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                               absl::StrCat("worker ", worker, " failed after ", delivered_tokens_,
                                            " tokens were delivered: ", error)));
      } else if (const BackoffPolicy policy = Backoff(env_.options); policy.MayRetry(attempts_)) {
        env_.counters->retried.fetch_add(1);
        phase_ = Phase::kBackoff;
        thread_local absl::BitGen bitgen;
        retry_after = policy.Delay(attempts_, absl::Uniform(bitgen, 0.5, 1.5));
      } else {
        env_.counters->failed.fetch_add(1);
        EndLocked(grpc::Status(failure->error_code(),
                               absl::StrCat("all ", attempts_, " attempts failed; last: ",
                                            last_failure_.error_message())));
      }
    }
    MaybeFinishLocked(actions);
  }
  if (outcome == Outcome::kWorkerError || outcome == Outcome::kRejected) {
    spdlog::warn("request {}: worker {} failed ({}){}", request_.request_id(),
                 attempt->lease().worker_id(), error, retry_after ? "; retrying" : "");
  }
  env_.pool->RecordOutcome(attempt->lease(), outcome, error);
  Run(actions);
  if (retry_after.has_value()) ScheduleRetry(*retry_after);
  // `attempt` (the upstream reactor, its context and lease) ends here.
}

void GenerateRelay::ScheduleRetry(absl::Duration delay) {
  auto alarm = std::make_shared<grpc::Alarm>();
  {
    absl::MutexLock lock(&mu_);
    alarm_ = alarm;
  }
  const std::weak_ptr<GenerateRelay> weak = weak_from_this();
  alarm->Set(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(delay),
             [weak](bool /*fired*/) {
               if (std::shared_ptr<GenerateRelay> self = weak.lock()) self->BackoffDone();
             });
}

void GenerateRelay::BackoffDone() {
  Actions actions;
  bool stop = false;
  {
    absl::MutexLock lock(&mu_);
    switch (phase_) {
      case Phase::kBackoff:
        if (cancelled_) {
          EndLocked(Cancelled());
          MaybeFinishLocked(actions);
          stop = true;
        } else {
          phase_ = Phase::kPlacing;
        }
        break;
      case Phase::kEnded:  // cancelled during the backoff (the alarm was cancelled)
        return;
      case Phase::kQueued:  // not reachable: the timer is set only in kBackoff
      case Phase::kPlacing:
      case Phase::kStreaming:
        return;
    }
  }
  Run(actions);
  if (!stop) PlaceAndStart();
}

}  // namespace

void RelayTracker::Add() {
  absl::MutexLock lock(&mu_);
  ++live_;
}

void RelayTracker::Remove() {
  absl::MutexLock lock(&mu_);
  --live_;
}

int64_t RelayTracker::live() const {
  absl::MutexLock lock(&mu_);
  return live_;
}

bool RelayTracker::WaitIdle(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* StartGenerateRelay(
    const RelayEnvironment& env, grpc::CallbackServerContext* context, v1::GenerateRequest request,
    std::vector<uint64_t> block_hashes) {
  auto relay =
      std::make_shared<GenerateRelay>(env, context, std::move(request), std::move(block_hashes));
  return relay->Begin();
}

grpc::ServerWriteReactor<v1::GenerateResponse>* FinishedGenerateReactor(grpc::Status status) {
  return api::FinishedWriteReactor<v1::GenerateResponse>(std::move(status));
}

}  // namespace tessera::router
