#include "common/api/request_validation.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/api/field_limits.h"
#include "common/status_macros.h"

namespace tessera::api {
namespace {

absl::Status CheckStopTokenIds(const SamplingParams& p, const RequestLimits& limits) {
  for (size_t i = 0; i < p.stop_token_ids.size(); ++i) {
    if (p.stop_token_ids[i] >= limits.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop_token_ids[", i, "] = ", p.stop_token_ids[i],
                       " is outside the vocabulary [0, ", limits.vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPrompt(std::span<const int32_t> prompt, const RequestLimits& limits) {
  if (prompt.empty()) {
    return absl::InvalidArgumentError(
        "prompt is empty: give `text`, `chat` messages or at least one id in `token_ids`");
  }
  for (size_t i = 0; i < prompt.size(); ++i) {
    const int32_t id = prompt[i];
    if (id < 0 || id >= limits.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token_ids[", i, "] = ", id, " is outside the vocabulary [0, ", limits.vocab_size, ")"));
    }
  }
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  if (prompt_len > limits.max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt has ", prompt_len, " tokens, more than max_model_len ", limits.max_model_len));
  }
  return absl::OkStatus();
}

absl::Status CheckTotalLength(std::span<const int32_t> prompt, const SamplingParams& params,
                              const RequestLimits& limits) {
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  if (prompt_len + params.max_tokens > limits.max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", prompt_len, " tokens) + max_tokens (", params.max_tokens,
        ") = ", prompt_len + params.max_tokens, " exceeds max_model_len ", limits.max_model_len));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SamplingParams> SamplingParamsFromProto(const v1::SamplingParams& proto,
                                                       const RequestLimits& limits) {
  SamplingParams p;  // its defaults are the wire defaults
  if (proto.has_max_tokens()) p.max_tokens = proto.max_tokens();
  if (proto.has_temperature()) p.temperature = proto.temperature();
  if (proto.has_top_p()) p.top_p = proto.top_p();
  if (proto.has_top_k()) p.top_k = proto.top_k();
  if (proto.has_min_p()) p.min_p = proto.min_p();
  if (proto.has_seed()) p.seed = proto.seed();
  p.stop.assign(proto.stop().begin(), proto.stop().end());
  p.stop_token_ids.assign(proto.stop_token_ids().begin(), proto.stop_token_ids().end());
  p.ignore_eos = proto.ignore_eos();
  if (proto.has_repetition_penalty()) p.repetition_penalty = proto.repetition_penalty();
  if (proto.has_presence_penalty()) p.presence_penalty = proto.presence_penalty();
  if (proto.has_frequency_penalty()) p.frequency_penalty = proto.frequency_penalty();
  if (proto.has_logprobs()) p.logprobs = proto.logprobs();
  if (proto.has_n()) p.n = proto.n();
  RETURN_IF_ERROR(p.Validate(limits.max_logprobs, limits.max_stop, limits.max_n));
  RETURN_IF_ERROR(CheckStopTokenIds(p, limits));
  return p;
}

absl::Status ValidateTokensAndParams(std::span<const int32_t> prompt_token_ids,
                                     const SamplingParams& params, const RequestLimits& limits) {
  RETURN_IF_ERROR(CheckPrompt(prompt_token_ids, limits));
  RETURN_IF_ERROR(params.Validate(limits.max_logprobs, limits.max_stop, limits.max_n));
  RETURN_IF_ERROR(CheckStopTokenIds(params, limits));
  return CheckTotalLength(prompt_token_ids, params, limits);
}

absl::StatusOr<ValidatedRequest> ValidateGenerateRequest(const v1::GenerateRequest& request,
                                                         const RequestLimits& limits,
                                                         const ModelText& text) {
  RETURN_IF_ERROR(CheckGenerateRequestSizes(request));
  RETURN_IF_ERROR(CheckModelName(request.model(), limits.model_name, "worker"));
  ValidatedRequest r;
  if (request.prompt_case() == v1::GenerateRequest::kText && request.text().empty()) {
    return absl::InvalidArgumentError("prompt: text is empty; give a non-empty prompt");
  }
  if (request.prompt_case() != v1::GenerateRequest::PROMPT_NOT_SET) {
    ASSIGN_OR_RETURN(r.prompt_token_ids, text.PromptIds(request));
  }
  RETURN_IF_ERROR(CheckPrompt(r.prompt_token_ids, limits));
  ASSIGN_OR_RETURN(r.params, SamplingParamsFromProto(request.sampling(), limits));
  RETURN_IF_ERROR(CheckTotalLength(r.prompt_token_ids, r.params, limits));
  return r;
}

void FillDefaultMaxTokens(v1::GenerateRequest& request, int64_t prompt_len, int64_t max_model_len) {
  if (request.sampling().has_max_tokens()) return;
  const int64_t fit =
      std::clamp<int64_t>(max_model_len - prompt_len, 1, std::numeric_limits<int32_t>::max());
  request.mutable_sampling()->set_max_tokens(static_cast<int32_t>(fit));
}

}  // namespace tessera::api
