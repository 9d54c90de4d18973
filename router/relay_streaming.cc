// The streaming half of GenerateRelay (router/generate_relay_state.h): each
// message read from the worker is written to the client, one in flight each
// way; the end of an attempt is classified (router/retry_policy.h) into
// success, a pass-through error, a retry after a backoff, or the end.
#include "router/generate_relay_state.h"

namespace tessera::router::relay_internal {

using api::StatusCodeName;

void GenerateRelay::UpstreamRead(bool ok) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    read_pending_ = false;
    bool relay = false;  // write the message to the client
    switch (phase_) {
      case Phase::kStreaming:
        relay = ok && !cancelled_ && client_ != nullptr;
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
      // The client sees its own id (or the router's when it gave none).
      writing_.set_request_id(client_request_id_.empty() ? request_.request_id()
                                                         : client_request_id_);
      ++delivered_messages_;
      delivered_tokens_ += writing_.token_ids_size();
      // What a continuation resumes after (the worker checks the index).
      if (writing_.index() >= 0 && writing_.index() < choices_) {
        DeliveredChoice& choice = delivered_[writing_.index()];
        choice.token_ids.insert(choice.token_ids.end(), writing_.token_ids().begin(),
                                writing_.token_ids().end());
        if (writing_.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) choice.finished = true;
      }
      if (!first_token_.has_value() && writing_.token_ids_size() > 0) first_token_ = absl::Now();
      if (writing_.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) NoteFinalLocked(writing_);
      write_in_flight_ = true;
      actions.client = client_;
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
  bool place = false;
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
      case Phase::kBackoff:  // a failed attempt's last message; its continuation may wait
        if (place_after_write_) {
          place_after_write_ = false;
          if (cancelled_) {
            EndLocked(Cancelled());
          } else {
            phase_ = Phase::kPlacing;
            place = true;
          }
        }
        break;
      case Phase::kQueued:  // not reachable: nothing was relayed yet
      case Phase::kPlacing:
        break;
    }
    MaybeFinishLocked(actions);
  }
  Run(actions);
  if (place) PlaceAndStart();
}

void GenerateRelay::UpstreamDone(const grpc::Status& status) {
  Actions actions;
  std::shared_ptr<Upstream> attempt;
  Outcome outcome = Outcome::kSuccess;
  std::string error;
  std::optional<absl::Duration> retry_after;
  bool continuing = false;  // retry_after is a failover's
  {
    absl::MutexLock lock(&mu_);
    attempt = std::move(upstream_);
    hold_ = false;
    read_pending_ = false;
    const std::string& worker = attempt->lease().worker_id();
    TESSERA_CHECK(phase_ == Phase::kStreaming, "an attempt ended outside kStreaming");
    AttemptFacts facts;
    facts.status = status;
    facts.saw_final = finals_ >= choices_;
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
        retry_after = FailOverLocked(worker, error);
        continuing = retry_after.has_value();
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
    spdlog::warn(
        "request {}: worker {} failed ({}){}", request_.request_id(), attempt->lease().worker_id(),
        error,
        continuing ? "; continuing the stream elsewhere" : (retry_after ? "; retrying" : ""));
  }
  env_.pool->RecordOutcome(attempt->lease(), outcome, error);
  if (retry_after.has_value() && env_.observer != nullptr) {
    env_.observer->OnRetry(attempt->lease().worker_id(), outcome);
  }
  Run(actions);
  if (retry_after.has_value()) ScheduleRetry(*retry_after);
  // `attempt` (the upstream reactor, its context and lease) ends here.
}

std::optional<absl::Duration> GenerateRelay::FailOverLocked(const std::string& worker,
                                                            const std::string& error) {
  const FailoverFacts facts =
      FailoverFacts::Of(delivered_, failovers_, env_.options.max_failovers,
                        request_.sampling().has_max_tokens() ? request_.sampling().max_tokens()
                                                             : SamplingParams{}.max_tokens);
  const std::string failed = absl::StrCat("worker ", worker, " failed after ", delivered_tokens_,
                                          " tokens were delivered: ", error);
  const FailoverDecision decision = DecideFailover(facts);
  switch (decision) {
    case FailoverDecision::kComplete:
      // The stream broke after its last message: the client has it all.
      EndLocked(grpc::Status::OK);
      return std::nullopt;
    case FailoverDecision::kContinue: {
      ++failovers_;
      env_.counters->retried.fetch_add(1);
      env_.counters->continued.fetch_add(1);
      last_failure_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, failed);
      continuation_ = ContinuationRequest(request_, delivered_);
      phase_ = Phase::kBackoff;
      thread_local absl::BitGen bitgen;
      return Backoff(env_.options).Delay(attempts_, absl::Uniform(bitgen, 0.5, 1.5));
    }
    case FailoverDecision::kNoFailoversLeft:
    case FailoverDecision::kNothingLeft:
      env_.counters->failed.fetch_add(1);
      EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                             absl::StrCat(failed, "; ", FailoverRefusal(decision, facts))));
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace tessera::router::relay_internal
