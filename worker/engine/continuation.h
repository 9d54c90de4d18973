// A continued request: one that another worker started and failed on after
// the client had received part of its output (GenerateRequest.continuation,
// set by the router's failover). The engine resumes it exactly where the
// first worker's stream stopped:
//   - the sequence is the prompt followed by the delivered tokens as *output*
//     (Sequence::PrimeOutput): penalties see them, max_tokens counts them,
//     usage.completion_tokens includes them;
//   - the sampler's randomness is a function of (seed, output position)
//     (kernels/sampling_rule.h, Uniform), and the position of the first new
//     token is the number delivered, so a seeded request draws what the
//     first worker would have drawn;
//   - the text state (incremental detokenizer, stop-string matcher) is
//     replayed over the delivered tokens (OutputProcessor::PrimeContinuation),
//     so the next text continues the delivered text: nothing repeated,
//     nothing missing (text a stop string or a split character held back
//     comes out with the next token, as it would have).
// Only for n = 1: each choice of an n > 1 request has output of its own.
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "common/api/request_limits.h"
#include "common/api/sampling_params.h"

namespace tessera {

// INVALID_ARGUMENT, naming the field and the limit, unless `output` (the
// delivered tokens; empty: not a continuation, always OK) can continue a
// request with `params`: n is 1, fewer tokens than max_tokens (at least one
// is left to generate), every id in the vocabulary.
absl::Status ValidateContinuation(std::span<const int32_t> output, const SamplingParams& params,
                                  const api::RequestLimits& limits);

}  // namespace tessera
