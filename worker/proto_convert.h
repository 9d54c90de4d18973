// Conversions between the wire (tessera.v1 messages) and the engine's types,
// with admission validation. Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tokenizer.h"
#include "tessera/v1/llm.pb.h"
#include "worker/engine.h"
#include "worker/sampler.h"
#include "worker/sampling_params.h"
#include "worker/sequence.h"

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

// Every stateless admission check of a GenerateRequest, then the engine
// request (its request_id copied; the caller fills it when empty):
//   NOT_FOUND         `model` is neither empty nor the served model
//   INVALID_ARGUMENT  no prompt / empty prompt; a token id outside the
//                     vocabulary; prompt longer than max_model_len; prompt +
//                     max_tokens beyond max_model_len; bad sampling params
// Text prompts are tokenized with BOS.
absl::StatusOr<EngineRequest> EngineRequestFromProto(const v1::GenerateRequest& request,
                                                     const AdmissionLimits& limits,
                                                     const Tokenizer& tokenizer);

v1::FinishReason FinishReasonToProto(FinishReason reason);

// One token's logprob entry (token, its logprob, the top-n).
void SampleResultToProto(const SampleResult& sample, v1::TokenLogprob* out);

}  // namespace tessera
