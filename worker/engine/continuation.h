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
// With n > 1 each unfinished choice (ContinuedChoice) has output of its own:
// the engine runs each as a request of its own with n = 1 and the choice's
// seed (seed + index, as a fork of the uninterrupted request samples), and
// gives its outputs the request's id and the choice's index
// (Engine::AddRequest). Choices the client has whole are not run again.
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "common/api/request_limits.h"
#include "common/api/sampling_params.h"

namespace tessera {

// One unfinished choice of a continued request with n > 1.
struct ContinuedChoice {
  int index = 0;                // 0 .. n - 1
  std::vector<int32_t> output;  // what the client has of it (may be empty)
};

// INVALID_ARGUMENT, naming the field and the limit, unless the continuation
// can continue a request with `params`: with n = 1 `output` (the delivered
// tokens) and no `choices`; with n > 1 `choices` (at least one, each index in
// [0, n) once) and no `output`; every choice with fewer tokens than
// max_tokens (at least one is left to generate), every id in the
// vocabulary. Both empty: not a continuation, always OK.
absl::Status ValidateContinuation(std::span<const int32_t> output,
                                  std::span<const ContinuedChoice> choices,
                                  const SamplingParams& params, const api::RequestLimits& limits);

}  // namespace tessera
