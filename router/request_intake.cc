#include "router/request_intake.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/api/field_limits.h"
#include "common/api/request_limits.h"
#include "common/api/request_validation.h"
#include "common/block_hash.h"
#include "common/status_macros.h"
#include "router/continuation.h"

namespace tessera::router {
namespace {

// 128 random bits from absl::BitGen (Randen, an AES-based generator seeded
// from the OS's entropy; one per thread): nobody can guess the id of another
// client's request, so nobody can take it first.
std::string RandomId(absl::string_view prefix) {
  thread_local absl::BitGen bitgen;
  return absl::StrFormat("%s-%016x%016x", prefix, absl::Uniform<uint64_t>(bitgen),
                         absl::Uniform<uint64_t>(bitgen));
}

}  // namespace

RequestIntake::RequestIntake(WorkerPool* pool, IntakeOptions options)
    : pool_(pool),
      options_(std::move(options)),
      id_prefix_(options_.request_id_prefix.empty() ? "router" : options_.request_id_prefix) {}

absl::StatusOr<std::shared_ptr<const ServedModel>> RequestIntake::Model() {
  std::optional<v1::ModelInfo> info = pool_->model_info();
  std::shared_ptr<const ModelText> text = pool_->model_text();
  if (!info.has_value() || text == nullptr) {
    return absl::UnavailableError(
        "no worker has reported its model yet; retry once a worker is healthy");
  }
  absl::MutexLock lock(&mu_);
  // The pool adopts (and forgets) a model and its ModelText together; the
  // workers' vote may also change the info (limits) under the same ModelText.
  if (model_ == nullptr || model_->text != text ||
      model_->info.SerializeAsString() != info->SerializeAsString()) {
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
  // Sizes first: nothing below copies, tokenizes or echoes an oversized field.
  RETURN_IF_ERROR(api::CheckGenerateRequestSizes(request));
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
  // The client's id is a label (request log, responses); the workers only
  // ever see the router's own, so clients cannot collide with each other.
  out.client_request_id = out.upstream.request_id();
  out.upstream.set_request_id(RandomId(id_prefix_));
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
