#include "router/request_intake.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/api/request_limits.h"
#include "common/api/request_validation.h"
#include "common/block_hash.h"
#include "common/status_macros.h"
#include "router/continuation.h"

namespace tessera::router {
namespace {

std::string RandomPrefix() {
  absl::BitGen bitgen;
  return absl::StrFormat("router-%06x", absl::Uniform<uint32_t>(bitgen, 0, 1u << 24));
}

}  // namespace

RequestIntake::RequestIntake(WorkerPool* pool, IntakeOptions options)
    : pool_(pool),
      options_(std::move(options)),
      id_prefix_(options_.request_id_prefix.empty() ? RandomPrefix() : options_.request_id_prefix) {
}

absl::StatusOr<std::shared_ptr<const ServedModel>> RequestIntake::Model() {
  std::optional<v1::ModelInfo> info = pool_->model_info();
  std::shared_ptr<const ModelText> text = pool_->model_text();
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
    m->names = options_.served_model_names;
    if (m->names.empty()) m->names.push_back(m->info.id());
    model_ = std::move(m);
  }
  return model_;
}

absl::Status RequestIntake::CheckModelName(const ServedModel& model, absl::string_view requested) {
  // The workers' own id is always accepted besides the aliases.
  if (requested == model.info.id()) return absl::OkStatus();
  return api::CheckModelName(requested, model.names, "router");
}

absl::StatusOr<PreparedRequest> RequestIntake::Prepare(const ServedModel& model,
                                                       v1::GenerateRequest request,
                                                       bool fill_max_tokens) {
  RETURN_IF_ERROR(CheckModelName(model, request.model()));
  thread_local absl::BitGen seeds;
  RETURN_IF_ERROR(MakeResumable(request, seeds));  // router/continuation.h
  request.set_model(model.info.id());
  const api::RequestLimits limits = api::FromModelInfo(model.info);
  if (fill_max_tokens && !request.sampling().has_max_tokens()) {
    // Tokenize once here; the prompt travels on as token ids. A prompt that
    // leaves no room fails the length check below with the usual message.
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, model.text->PromptIds(request));
    request.mutable_token_ids()->mutable_ids()->Assign(ids.begin(), ids.end());
    api::FillDefaultMaxTokens(request, std::ssize(ids), limits.max_model_len);
  }
  ASSIGN_OR_RETURN(api::ValidatedRequest valid,
                   api::ValidateGenerateRequest(request, limits, *model.text));

  PreparedRequest out;
  out.upstream = std::move(request);
  out.client_request_id = out.upstream.request_id();
  if (out.upstream.request_id().empty()) {
    out.upstream.set_request_id(absl::StrCat(id_prefix_, "-", next_id_.fetch_add(1)));
  }
  if (out.upstream.prompt_case() != v1::GenerateRequest::kTokenIds) {
    out.upstream.mutable_token_ids()->mutable_ids()->Assign(valid.prompt_token_ids.begin(),
                                                            valid.prompt_token_ids.end());
  }
  out.prompt_tokens = static_cast<int32_t>(valid.prompt_token_ids.size());
  if (const int block_size = pool_->block_size(); block_size > 0) {
    out.block_hashes = HashFullBlocks(valid.prompt_token_ids, block_size);
  }
  return out;
}

}  // namespace tessera::router
