#include "worker/server/service.h"

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/api/field_limits.h"
#include "common/api/grpc_status.h"
#include "common/api/rejection.h"
#include "common/api/request_limits.h"
#include "worker/server/request_stream.h"

namespace tessera {
namespace {

using api::FinishUnary;
using api::ToGrpcStatus;

grpc::ServerWriteReactor<v1::GenerateResponse>* FinishedGenerateReactor(grpc::Status status) {
  return api::FinishedWriteReactor<v1::GenerateResponse>(std::move(status));
}

// The cluster credential check of every handler (ServiceContext::auth).
grpc::Status Authorize(const ServiceContext& context, const grpc::ServerContextBase& call) {
  return context.auth == nullptr ? grpc::Status::OK : context.auth->Check(call);
}

grpc::Status NotReady() {
  return ToGrpcStatus(api::WithRejection(
      absl::UnavailableError("worker is starting; retry shortly"), api::Rejection::kNotReady));
}

// One WatchKvEvents call: pops its watcher's batches one write at a time.
// Owned by gRPC (deleted in OnDone, after unsubscribing, so the hub never
// notifies a deleted reactor).
class KvWatchReactor : public grpc::ServerWriteReactor<v1::KvEventBatch> {
 public:
  explicit KvWatchReactor(KvEventHub* hub) : hub_(hub) {
    std::shared_ptr<KvEventHub::Watcher> w = hub_->Subscribe([this] { TryWrite(); });
    {
      absl::MutexLock lock(&mu_);
      watcher_ = std::move(w);
    }
    TryWrite();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      in_flight_ = false;
      if (!ok) cancelled_ = true;
    }
    TryWrite();
  }
  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
    }
    TryWrite();
  }
  void OnDone() override {
    std::shared_ptr<KvEventHub::Watcher> w;
    {
      absl::MutexLock lock(&mu_);
      w = watcher_;
    }
    if (w != nullptr) hub_->Unsubscribe(w);
    delete this;
  }

 private:
  // Starts the next write, or the Finish, when allowed; the decision is made
  // under mu_, the call after it (StartWrite/Finish may run reactions).
  void TryWrite() {
    enum { kNothing, kWrite, kFinish } action = kNothing;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (watcher_ == nullptr || in_flight_ || finished_) return;
      if (cancelled_) {
        finished_ = true;
        action = kFinish;
        status = grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
      } else {
        switch (watcher_->Pop(&batch_)) {
          case KvEventHub::Watcher::PopResult::kBatch:
            in_flight_ = true;
            action = kWrite;
            break;
          case KvEventHub::Watcher::PopResult::kOverflowed:
            finished_ = true;
            action = kFinish;
            status = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                  "this KV event watcher fell too far behind; resubscribe for a "
                                  "fresh snapshot");
            break;
          case KvEventHub::Watcher::PopResult::kEmpty:
            break;
        }
      }
    }
    if (action == kWrite) StartWrite(&batch_);
    if (action == kFinish) Finish(status);
  }

  KvEventHub* const hub_;
  absl::Mutex mu_;
  std::shared_ptr<KvEventHub::Watcher> watcher_ ABSL_GUARDED_BY(mu_);
  v1::KvEventBatch batch_;  // owned by the write in flight
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerateHandler::Generate(
    grpc::CallbackServerContext* ctx, const v1::GenerateRequest* request) {
  if (grpc::Status s = Authorize(context_, *ctx); !s.ok()) {
    return FinishedGenerateReactor(std::move(s));
  }
  if (!context_.IsReady()) return FinishedGenerateReactor(NotReady());
  absl::StatusOr<EngineRequest> r =
      EngineRequestFromProto(*request, context_.limits, *context_.text);
  if (!r.ok()) return FinishedGenerateReactor(ToGrpcStatus(r.status()));
  if (r->request_id.empty()) {
    r->request_id = absl::StrCat(context_.worker_id, "-", next_id_.fetch_add(1));
  }
  GenerateStream::Options options;
  options.request_id = r->request_id;
  options.worker_id = context_.worker_id;
  options.n = r->choices();
  if (request->return_prompt_token_ids()) options.prompt_token_ids = r->prompt_token_ids;
  std::shared_ptr<GenerateStream> stream =
      GenerateStream::Create(std::move(options), context_.loop);
  grpc::ServerWriteReactor<v1::GenerateResponse>* reactor = stream->reactor();
  if (absl::Status s = context_.loop->Submit(std::move(*r), stream); !s.ok()) {
    stream->OnError(s);
  }
  return reactor;
}

grpc::ServerUnaryReactor* WorkerService::GetLoad(grpc::CallbackServerContext* ctx,
                                                 const v1::GetLoadRequest* /*request*/,
                                                 v1::LoadReport* response) {
  if (grpc::Status s = Authorize(context_, *ctx); !s.ok()) return FinishUnary(ctx, std::move(s));
  if (!context_.IsReady()) return FinishUnary(ctx, NotReady());
  const LoadSnapshot load = context_.loop->load();
  response->set_worker_id(context_.worker_id);
  response->set_running(load.running);
  response->set_waiting(load.waiting);
  response->set_kv_blocks_used(load.kv_blocks_used);
  response->set_kv_blocks_total(load.kv_blocks_total);
  response->set_prefix_cache_hit_rate(load.prefix_cache_hit_rate);
  response->set_prefix_cache_queried_tokens(load.prefix_cache_queried_tokens);
  response->set_prefix_cache_hit_tokens(load.prefix_cache_hit_tokens);
  response->set_in_flight(load.in_flight);
  response->set_tokens_per_second(load.tokens_per_second);
  response->set_draining(load.draining);
  response->set_stalled(load.stalled);
  response->set_stall_seconds(load.stall_seconds);
  response->set_block_size(context_.block_size);
  response->set_model(context_.limits.model_name);
  return FinishUnary(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* WorkerService::GetTokenizer(grpc::CallbackServerContext* ctx,
                                                      const v1::GetTokenizerRequest* /*request*/,
                                                      v1::GetTokenizerResponse* response) {
  if (grpc::Status s = Authorize(context_, *ctx); !s.ok()) return FinishUnary(ctx, std::move(s));
  context_.text->ToProto(response);
  return FinishUnary(ctx, grpc::Status::OK);
}

grpc::ServerWriteReactor<v1::KvEventBatch>* WorkerService::WatchKvEvents(
    grpc::CallbackServerContext* ctx, const v1::WatchKvEventsRequest* /*request*/) {
  if (grpc::Status s = Authorize(context_, *ctx); !s.ok()) {
    return api::FinishedWriteReactor<v1::KvEventBatch>(std::move(s));
  }
  if (context_.hub == nullptr) {
    class Unimplemented : public grpc::ServerWriteReactor<v1::KvEventBatch> {
     public:
      Unimplemented() {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "KV events are not available"));
      }
      void OnDone() override { delete this; }
    };
    return new Unimplemented();
  }
  return new KvWatchReactor(context_.hub);
}

grpc::ServerUnaryReactor* WorkerService::Drain(grpc::CallbackServerContext* ctx,
                                               const v1::DrainRequest* /*request*/,
                                               v1::DrainResponse* response) {
  if (grpc::Status s = Authorize(context_, *ctx); !s.ok()) return FinishUnary(ctx, std::move(s));
  if (!context_.IsReady()) return FinishUnary(ctx, NotReady());
  response->set_in_flight(context_.drain ? context_.drain() : 0);
  return FinishUnary(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* LlmService::Tokenize(grpc::CallbackServerContext* ctx,
                                               const v1::TokenizeRequest* request,
                                               v1::TokenizeResponse* response) {
  if (grpc::Status s = Authorize(context_, *ctx); !s.ok()) return FinishUnary(ctx, std::move(s));
  if (absl::Status s = api::CheckTokenizeRequestSizes(*request); !s.ok()) {
    return FinishUnary(ctx, ToGrpcStatus(s));
  }
  if (absl::Status s = api::CheckModelName(request->model(), context_.limits.model_name, "worker");
      !s.ok()) {
    return FinishUnary(ctx, ToGrpcStatus(s));
  }
  absl::StatusOr<std::vector<int32_t>> ids =
      context_.text->tokenizer().Encode(request->text(), request->add_special_tokens());
  if (!ids.ok()) return FinishUnary(ctx, ToGrpcStatus(ids.status()));
  response->mutable_token_ids()->Add(ids->begin(), ids->end());
  return FinishUnary(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* LlmService::ListModels(grpc::CallbackServerContext* ctx,
                                                 const v1::ListModelsRequest* /*request*/,
                                                 v1::ListModelsResponse* response) {
  if (grpc::Status s = Authorize(context_, *ctx); !s.ok()) return FinishUnary(ctx, std::move(s));
  v1::ModelInfo* m = response->add_models();
  *m = api::ToModelInfo(context_.limits);
  m->set_tokenizer_hash(context_.text->hash());
  return FinishUnary(ctx, grpc::Status::OK);
}

}  // namespace tessera
