#include "worker/server/request_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/api/grpc_status.h"
#include "worker/server/proto_convert.h"

namespace tessera {
namespace {

using Clock = std::chrono::steady_clock;

// Tokens one coalesced message carries at most (~60 KB with 20 logprobs each).
constexpr int kMaxTokensPerMessage = 256;

int64_t Micros(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// Appends `part` to `into`: tokens, text and logprobs concatenate; the last
// part's finish fields win.
void Merge(v1::GenerateResponse& into, v1::GenerateResponse&& part) {
  if (!part.request_id().empty()) into.set_request_id(part.request_id());
  if (!part.worker_id().empty()) into.set_worker_id(part.worker_id());
  into.mutable_token_ids()->Add(part.token_ids().begin(), part.token_ids().end());
  into.mutable_text()->append(part.text());
  for (v1::TokenLogprob& lp : *part.mutable_logprobs()) {
    *into.add_logprobs() = std::move(lp);
  }
  if (part.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
    into.set_finish_reason(part.finish_reason());
  }
  if (part.has_usage()) *into.mutable_usage() = part.usage();
  if (part.has_timings()) *into.mutable_timings() = part.timings();
}

}  // namespace

class GenerateStream::Reactor : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit Reactor(std::shared_ptr<GenerateStream> stream) : stream_(std::move(stream)) {}
  void OnWriteDone(bool ok) override { stream_->WriteDone(ok); }
  void OnCancel() override { stream_->Cancelled(); }
  void OnDone() override {
    stream_->Done();
    delete this;
  }

 private:
  const std::shared_ptr<GenerateStream> stream_;
};

GenerateStream::GenerateStream(Options options, EngineLoop* loop)
    : options_(std::move(options)), loop_(loop), arrival_(Clock::now()) {}

std::shared_ptr<GenerateStream> GenerateStream::Create(Options options, EngineLoop* loop) {
  std::shared_ptr<GenerateStream> s(new GenerateStream(std::move(options), loop));
  absl::MutexLock lock(&s->mu_);
  s->reactor_ = new Reactor(s);
  return s;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerateStream::reactor() {
  absl::MutexLock lock(&mu_);
  return reactor_;
}

void GenerateStream::OnScheduled() {
  if (!scheduled_.has_value()) scheduled_ = Clock::now();
}

bool GenerateStream::OnOutput(RequestOutput output) {
  const Clock::time_point now = Clock::now();
  if (!scheduled_.has_value()) scheduled_ = now;
  v1::GenerateResponse part;
  part.set_request_id(options_.request_id);
  part.set_worker_id(options_.worker_id);
  part.set_index(output.index);
  part.mutable_token_ids()->Add(output.new_tokens.begin(), output.new_tokens.end());
  if (!prompt_ids_sent_) {  // only the first output carries them
    part.mutable_prompt_token_ids()->Add(options_.prompt_token_ids.begin(),
                                         options_.prompt_token_ids.end());
    prompt_ids_sent_ = true;
  }
  if (!output.new_tokens.empty() && !first_token_.has_value()) first_token_ = now;
  for (const SampleResult& s : output.logprobs) SampleResultToProto(s, part.add_logprobs());

  part.set_text(std::move(output.text));  // empty unless the request asked for text
  const bool choice_done = output.finished();
  if (choice_done) ++finished_choices_;
  const bool last = choice_done && finished_choices_ >= options_.n;
  if (choice_done) {
    part.set_finish_reason(FinishReasonToProto(output.finish_reason));
    v1::Usage* usage = part.mutable_usage();
    usage->set_prompt_tokens(output.prompt_tokens);
    usage->set_completion_tokens(output.completion_tokens);
    usage->set_cached_prompt_tokens(output.cached_prompt_tokens);
    v1::Timings* t = part.mutable_timings();
    t->set_queue_time_us(Micros(scheduled_.value_or(now) - arrival_));
    t->set_time_to_first_token_us(Micros(first_token_.value_or(now) - arrival_));
    t->set_total_time_us(Micros(now - arrival_));
  }
  Enqueue(std::move(part), last);
  return false;  // the engine's output processor decides the end
}

void GenerateStream::OnError(absl::Status status) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    if (ended_ || cancelled_) return;
    ended_ = true;
    pending_.clear();
    final_status_ = api::ToGrpcStatus(status);
    action = NextAction();
  }
  Run(action);
}

void GenerateStream::Enqueue(v1::GenerateResponse part, bool last) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    if (ended_ || cancelled_) return;
    if (!pending_.empty() && pending_.back().index() == part.index() &&
        pending_.back().finish_reason() == v1::FINISH_REASON_UNSPECIFIED &&
        pending_.back().token_ids_size() + part.token_ids_size() <= kMaxTokensPerMessage) {
      Merge(pending_.back(), std::move(part));
    } else {
      pending_.push_back(std::move(part));
    }
    if (last) {
      ended_ = true;
      final_status_ = grpc::Status::OK;
    }
    action = NextAction();
  }
  Run(action);
}

GenerateStream::Action GenerateStream::NextAction() {
  Action a;
  if (reactor_ == nullptr || finish_called_ || write_in_flight_) return a;
  a.reactor = reactor_;
  if (!pending_.empty() && !cancelled_) {
    writing_.Clear();
    writing_.Swap(&pending_.front());
    pending_.pop_front();
    write_in_flight_ = true;
    a.write = true;
    return a;
  }
  if (final_status_.has_value()) {
    finish_called_ = true;
    a.finish = *final_status_;
  }
  return a;
}

void GenerateStream::Run(const Action& action) {
  // The reactor stays alive: OnDone cannot come while a write we started is
  // in flight or before the Finish we decided.
  if (action.write) {
    action.reactor->StartWrite(&writing_);
  } else if (action.finish.has_value()) {
    action.reactor->Finish(*action.finish);
  }
}

void GenerateStream::WriteDone(bool ok) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok && !cancelled_) {
      // The stream broke (client gone): stop writing; OnCancel follows.
      cancelled_ = true;
      if (!final_status_.has_value()) final_status_ = grpc::Status::CANCELLED;
    }
    action = NextAction();
  }
  Run(action);
}

void GenerateStream::Cancelled() {
  Action action;
  bool abort;
  {
    absl::MutexLock lock(&mu_);
    abort = !ended_;
    cancelled_ = true;
    ended_ = true;
    pending_.clear();
    if (!final_status_.has_value() || final_status_->ok()) {
      final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the request was cancelled");
    }
    action = NextAction();
  }
  if (abort) loop_->Abort(options_.request_id, this);
  Run(action);
}

void GenerateStream::Done() {
  bool abort;
  {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    abort = !ended_;
    ended_ = true;
  }
  if (abort) loop_->Abort(options_.request_id, this);
}

}  // namespace tessera
