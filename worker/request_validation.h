// Admission checks of a GenerateRequest, shared by the worker (before its
// engine) and the router (before placement), so both answer bad input with
// the same code and message. Depends only on the wire types, the tokenizer
// and SamplingParams: no engine, model or gRPC. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model_text.h"
#include "tessera/v1/llm.pb.h"
#include "worker/engine/sampling_params.h"

namespace tessera {

// What a request is checked against at admission.
struct AdmissionLimits {
  std::string model_name;  // the served model (Replica::model_name)
  int32_t vocab_size = 0;
  int max_model_len = 0;
  int max_logprobs = 20;
  int max_stop = 16;  // stop strings + stop_token_ids
};

// The wire sampling parameters with defaults for unset optional fields
// (max_tokens 16, temperature 1, top_p 1, top_k -1, min_p 0, penalties off,
// no logprobs), validated: INVALID_ARGUMENT naming the field and the limit.
absl::StatusOr<SamplingParams> SamplingParamsFromProto(const v1::SamplingParams& proto,
                                                       const AdmissionLimits& limits);

// A request that passed every admission check.
struct ValidatedRequest {
  std::vector<int32_t> prompt_token_ids;  // text prompts tokenized, BOS first
  SamplingParams params;                  // defaulted and validated
};

// Every stateless admission check of a GenerateRequest:
//   NOT_FOUND         `model` is neither empty nor the served model
//   INVALID_ARGUMENT  no prompt / empty prompt; a token id outside the
//                     vocabulary; prompt longer than max_model_len; prompt +
//                     max_tokens beyond max_model_len; bad sampling params
// Text and chat prompts become token ids through `text` (ModelText::PromptIds:
// the chat template's errors are INVALID_ARGUMENT with its message).
absl::StatusOr<ValidatedRequest> ValidateGenerateRequest(const v1::GenerateRequest& request,
                                                         const AdmissionLimits& limits,
                                                         const ModelText& text);

}  // namespace tessera
