// Admission checks of a GenerateRequest, shared by the worker (at its
// service and again in its engine) and the router (before placement), so
// every path answers bad input with the same code and message, checked
// against one RequestLimits (common/api/request_limits.h). Depends only on
// the wire types, the model's text side (common/model_text.h) and SamplingParams: no engine, model
// or gRPC. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/api/request_limits.h"
#include "common/api/sampling_params.h"
#include "common/model_text.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::api {

// The wire sampling parameters with defaults for unset optional fields
// (max_tokens 16, temperature 1, top_p 1, top_k -1, min_p 0, penalties off,
// no logprobs, n 1), validated: INVALID_ARGUMENT naming the field and the limit.
absl::StatusOr<SamplingParams> SamplingParamsFromProto(const v1::SamplingParams& proto,
                                                       const RequestLimits& limits);

// The checks of an already-parsed request, for callers that build
// SamplingParams themselves (the engine, tessera-generate): `params` within
// the limits (SamplingParams::Validate with max_logprobs, max_stop and max_n), stop
// token ids and prompt ids inside the vocabulary, a non-empty prompt, and
// prompt + max_tokens within max_model_len. INVALID_ARGUMENT naming the
// field and the limit.
absl::Status ValidateTokensAndParams(std::span<const int32_t> prompt_token_ids,
                                     const SamplingParams& params, const RequestLimits& limits);

// A request that passed every admission check.
struct ValidatedRequest {
  std::vector<int32_t> prompt_token_ids;  // text and chat prompts tokenized
  SamplingParams params;                  // defaulted and validated
};

// Every stateless admission check of a GenerateRequest:
//   INVALID_ARGUMENT  a string or list over its size limit (field_limits.h)
//   NOT_FOUND         `model` is neither empty nor the served model
//   INVALID_ARGUMENT  no prompt / empty prompt; then ValidateTokensAndParams
// Text and chat prompts become token ids through `text` (ModelText::PromptIds:
// text with the tokenizer's special tokens unless add_special_tokens is
// false; chat rendered with the template, whose errors are INVALID_ARGUMENT
// with its message).
absl::StatusOr<ValidatedRequest> ValidateGenerateRequest(const v1::GenerateRequest& request,
                                                         const RequestLimits& limits,
                                                         const ModelText& text);

// An unset sampling.max_tokens becomes everything that fits after the
// prompt, max(1, max_model_len - prompt_len) (vLLM's OpenAI server does this
// for chat, and for completions that pass "max_tokens": null); a set one is
// left alone. Call it before ValidateGenerateRequest.
void FillDefaultMaxTokens(v1::GenerateRequest& request, int64_t prompt_len, int64_t max_model_len);

}  // namespace tessera::api
