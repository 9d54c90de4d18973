// Conversions between the wire (tessera.v1 messages) and the engine's types,
// with admission validation (common/api/request_validation.h, shared with the
// router). Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/api/request_validation.h"
#include "common/api/sampling_params.h"
#include "common/model_text.h"
#include "tessera/v1/llm.pb.h"
#include "worker/engine/engine.h"
#include "worker/engine/sequence.h"
#include "worker/exec/sampler.h"

namespace tessera {

// ValidateGenerateRequest (common/api/request_validation.h: every stateless
// admission check, NOT_FOUND / INVALID_ARGUMENT), then the engine request
// (its request_id and priority copied; the caller fills an empty id).
absl::StatusOr<EngineRequest> EngineRequestFromProto(const v1::GenerateRequest& request,
                                                     const api::RequestLimits& limits,
                                                     const ModelText& text);

v1::FinishReason FinishReasonToProto(FinishReason reason);

// One token's logprob entry (token, its logprob, the top-n).
void SampleResultToProto(const SampleResult& sample, v1::TokenLogprob* out);

}  // namespace tessera
