#include "router/generate_relay.h"

#include "common/api/wire_names.h"
#include "router/generate_relay_state.h"

namespace tessera::router {
namespace relay_internal {

constexpr auto ToGrpc = api::ToGrpcStatus;

void GenerateRelay::Start(RelayClient* client) {
  std::shared_ptr<GenerateRelay> self = shared_from_this();
  {
    absl::MutexLock lock(&mu_);
    TESSERA_CHECK(client_ == nullptr && !finish_called_, "a relay started twice");
    client_ = client;
    started_ = true;
  }
  const AdmissionController::Ticket ticket = env_.admission->Acquire(
      requester_, [self](absl::Status status) { self->Admitted(std::move(status)); });
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
}

void GenerateRelay::Run(Actions& a) {
  if (a.cancel_upstream != nullptr) a.cancel_upstream->Cancel();
  if (a.cancel_alarm != nullptr) a.cancel_alarm->Cancel();
  if (a.cancel_ticket != 0) env_.admission->Cancel(a.cancel_ticket);
  if (a.write) a.client->Deliver(&writing_);
  if (a.read != nullptr) a.read->StartRead(&a.read->response);
  if (a.release_hold != nullptr) a.release_hold->RemoveHold();
  if (a.finish.has_value()) a.client->End(*a.finish);
}

void GenerateRelay::MaybeFinishLocked(Actions& a) {
  if (!final_status_.has_value() || finish_called_ || write_in_flight_ || client_ == nullptr) {
    return;
  }
  finish_called_ = true;
  a.client = client_;
  a.finish = *final_status_;
  client_ = nullptr;  // the client may go away once End is called
}

void GenerateRelay::Admitted(absl::Status status) {
  Actions actions;
  bool place = false;
  absl::Duration waited;
  {
    absl::MutexLock lock(&mu_);
    queue_wait_ = waited = absl::Now() - arrived_;
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
  if (env_.observer != nullptr) env_.observer->OnAdmission(status, waited);
  Run(actions);
  if (place) PlaceAndStart();
}

void GenerateRelay::PlaceAndStart() {
  std::vector<std::string> exclude;
  std::vector<DeliveredChoice> delivered;  // set when this attempt continues the stream
  bool continues = false;
  {
    absl::MutexLock lock(&mu_);
    exclude = tried_;
    if (continuation_.has_value()) {
      continues = true;
      delivered = delivered_;
    }
  }
  const std::vector<uint64_t> continuation_hashes =
      continues ? ContinuationBlockHashes(request_, delivered, env_.pool->block_size())
                : std::vector<uint64_t>();
  // A continuation prefers the worker holding the longest prefix of prompt +
  // delivered output.
  absl::StatusOr<Lease> lease =
      env_.pool->Place(PlacementRequest{continuation_hashes.empty()
                                            ? std::span<const uint64_t>(block_hashes_)
                                            : std::span<const uint64_t>(continuation_hashes)},
                       exclude);
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
      attempt = std::make_shared<Upstream>(shared_from_this(), std::move(*lease),
                                           std::move(continuation_));
      continuation_.reset();
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
    if (env_.observer != nullptr) env_.observer->OnPlacement(attempt->lease());
    spdlog::debug("request {} -> worker {} (attempt {})", request_.request_id(),
                  attempt->lease().worker_id(), exclude.size() + 1);
    attempt->Start(&request_, deadline_);
  }
}

RequestRecord GenerateRelay::RecordLocked() const {
  RequestRecord r;
  r.end_time = absl::Now();
  r.request_id = request_.request_id();
  r.client_request_id = client_request_id_;
  r.model = request_.model();
  r.front_end = env_.front_end;
  if (!tried_.empty()) r.worker = tried_.back();
  r.attempts = attempts_;
  r.continuations = failovers_;
  if (final_status_.has_value()) {
    r.status = final_status_->error_code();
    r.error = final_status_->error_message();
  } else {
    r.status = grpc::StatusCode::UNKNOWN;
    r.error = "the request ended without a status";
  }
  r.finish_reason =
      std::string(api::FinishReasonWord(static_cast<v1::FinishReason>(finish_reason_)));
  r.prompt_tokens = prompt_tokens_;
  r.completion_tokens = completion_tokens_;
  r.cached_tokens = cached_tokens_;
  r.queue = queue_wait_;
  if (first_token_.has_value()) r.ttft = *first_token_ - arrived_;
  r.total = r.end_time - arrived_;
  r.failed_over = attempts_ > 1 && r.status == grpc::StatusCode::OK;
  return r;
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
        } else if (write_in_flight_) {
          // A continuation's first read must not overtake the write of the
          // failed attempt's last message: WriteDone places it.
          place_after_write_ = true;
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

}  // namespace relay_internal

void RelayTracker::Add() {
  absl::MutexLock lock(&mu_);
  ++live_;
}

void RelayTracker::Remove() {
  absl::MutexLock lock(&mu_);
  --live_;
  ++ended_;
}

int64_t RelayTracker::ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
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

std::shared_ptr<Relay> CreateGenerateRelay(const RelayEnvironment& env,
                                           std::chrono::system_clock::time_point deadline,
                                           v1::GenerateRequest request,
                                           std::vector<uint64_t> block_hashes,
                                           std::string client_request_id,
                                           std::unique_ptr<TenantLease> tenant) {
  return std::make_shared<relay_internal::GenerateRelay>(
      env, deadline, std::move(request), std::move(block_hashes), std::move(client_request_id),
      std::move(tenant));
}

grpc::ServerWriteReactor<v1::GenerateResponse>* StartGenerateRelay(
    const RelayEnvironment& env, grpc::CallbackServerContext* context, v1::GenerateRequest request,
    std::vector<uint64_t> block_hashes, std::string client_request_id,
    std::unique_ptr<TenantLease> tenant) {
  auto relay = std::make_shared<relay_internal::GenerateRelay>(
      env, context->deadline(), std::move(request), std::move(block_hashes),
      std::move(client_request_id), std::move(tenant));
  auto* reactor = new relay_internal::GenerateRelay::Downstream(relay, context);
  relay->Start(reactor);
  return reactor;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* FinishedGenerateReactor(grpc::Status status) {
  return api::FinishedWriteReactor<v1::GenerateResponse>(std::move(status));
}

}  // namespace tessera::router
