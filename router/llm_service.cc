#include "router/llm_service.h"

#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/api/grpc_status.h"
#include "common/api/request_limits.h"
#include "common/api/request_validation.h"
#include "common/block_hash.h"

namespace tessera::router {
namespace {

using api::FinishUnary;
constexpr auto ToGrpc = api::ToGrpcStatus;

std::string RandomPrefix() {
  absl::BitGen bitgen;
  return absl::StrFormat("router-%06x", absl::Uniform<uint32_t>(bitgen, 0, 1u << 24));
}

}  // namespace

LlmService::LlmService(LlmServiceOptions options)
    : options_(std::move(options)),
      id_prefix_(options_.request_id_prefix.empty() ? RandomPrefix() : options_.request_id_prefix) {
}

absl::StatusOr<std::shared_ptr<const LlmService::ServedModel>> LlmService::Model() {
  std::optional<v1::ModelInfo> info = options_.relay.pool->model_info();
  std::shared_ptr<const ModelText> text = options_.relay.pool->model_text();
  if (!info.has_value() || text == nullptr) {
    return absl::UnavailableError(
        "no worker has reported its model yet; retry once a worker is healthy");
  }
  absl::MutexLock lock(&mu_);
  // The pool adopts (and forgets) a model and its ModelText together, so a
  // new ModelText pointer is the only sign that the info changed.
  if (model_ == nullptr || model_->text != text) {
    auto m = std::make_shared<ServedModel>();
    m->info = *info;
    m->text = std::move(text);
    model_ = std::move(m);
  }
  return model_;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* LlmService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  if (grpc::Status s = options_.auth->Check(*context); !s.ok()) {
    return FinishedGenerateReactor(std::move(s));
  }
  absl::StatusOr<std::shared_ptr<const ServedModel>> model = Model();
  if (!model.ok()) return FinishedGenerateReactor(ToGrpc(model.status()));
  const ServedModel& served = **model;
  if (absl::Status s = api::CheckModelName(request->model(), served.info.id(), "router"); !s.ok()) {
    return FinishedGenerateReactor(ToGrpc(s));
  }
  // The limits the workers reported with their model.
  absl::StatusOr<api::ValidatedRequest> valid =
      api::ValidateGenerateRequest(*request, api::FromModelInfo(served.info), *served.text);
  if (!valid.ok()) return FinishedGenerateReactor(ToGrpc(valid.status()));

  // What the worker gets: the same request with the prompt as token ids.
  v1::GenerateRequest upstream = *request;
  if (upstream.request_id().empty()) {
    upstream.set_request_id(absl::StrCat(id_prefix_, "-", next_id_.fetch_add(1)));
  }
  if (upstream.prompt_case() != v1::GenerateRequest::kTokenIds) {
    upstream.mutable_token_ids()->mutable_ids()->Add(valid->prompt_token_ids.begin(),
                                                     valid->prompt_token_ids.end());
  }
  std::vector<uint64_t> hashes;
  if (const int block_size = options_.relay.pool->block_size(); block_size > 0) {
    hashes = HashFullBlocks(valid->prompt_token_ids, block_size);
  }
  options_.relay.counters->total.fetch_add(1);
  return StartGenerateRelay(options_.relay, context, std::move(upstream), std::move(hashes));
}

grpc::ServerUnaryReactor* LlmService::Tokenize(grpc::CallbackServerContext* context,
                                               const v1::TokenizeRequest* request,
                                               v1::TokenizeResponse* response) {
  if (grpc::Status s = options_.auth->Check(*context); !s.ok()) {
    return FinishUnary(context, std::move(s));
  }
  absl::StatusOr<std::shared_ptr<const ServedModel>> model = Model();
  if (!model.ok()) return FinishUnary(context, ToGrpc(model.status()));
  if (absl::Status s = api::CheckModelName(request->model(), (*model)->info.id(), "router");
      !s.ok()) {
    return FinishUnary(context, ToGrpc(s));
  }
  absl::StatusOr<std::vector<int32_t>> ids =
      (*model)->text->tokenizer().Encode(request->text(), request->add_special_tokens());
  if (!ids.ok()) return FinishUnary(context, ToGrpc(ids.status()));
  response->mutable_token_ids()->Add(ids->begin(), ids->end());
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* LlmService::ListModels(grpc::CallbackServerContext* context,
                                                 const v1::ListModelsRequest* /*request*/,
                                                 v1::ListModelsResponse* response) {
  if (grpc::Status s = options_.auth->Check(*context); !s.ok()) {
    return FinishUnary(context, std::move(s));
  }
  absl::StatusOr<std::shared_ptr<const ServedModel>> model = Model();
  if (!model.ok()) return FinishUnary(context, ToGrpc(model.status()));
  *response->add_models() = (*model)->info;
  return FinishUnary(context, grpc::Status::OK);
}

}  // namespace tessera::router
