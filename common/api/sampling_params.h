// Per-request sampling parameters as the engine sees them (already validated
// and defaulted; the wire form is tessera.v1.SamplingParams, turned into
// this by common/api/request_validation.h). Value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tessera {

// The limits a request's sampling parameters are checked against unless the
// worker is configured otherwise (api::RequestLimits): the largest
// `logprobs` (top-n per token), and stop strings + stop token ids.
inline constexpr int kDefaultMaxLogprobs = 20;
inline constexpr int kDefaultMaxStop = 16;
// The largest `n` (parallel sampling) a server that does not say otherwise
// accepts: 1, so a router never sends n > 1 to a worker that predates it.
inline constexpr int kDefaultMaxN = 1;

struct SamplingParams {
  int max_tokens = 16;            // output tokens at most (>= 1)
  float temperature = 1.0f;       // 0 = greedy
  float top_p = 1.0f;             // (0, 1]
  int top_k = -1;                 // -1 (or 0) = off
  float min_p = 0.0f;             // [0, 1]
  std::optional<uint64_t> seed;   // set: same seed => same tokens, whatever the batch
  std::vector<std::string> stop;  // stop strings (matched on detokenized text by the server)
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  float repetition_penalty = 1.0f;  // > 0; 1 = off (HF/vLLM semantics)
  float presence_penalty = 0.0f;    // [-2, 2]
  float frequency_penalty = 0.0f;   // [-2, 2]
  int logprobs = 0;                 // top-n logprobs to return with each token (0 = none)
  // Parallel sampling: n choices of one prompt, prefilled once; choice i
  // samples with seed + i when `seed` is set. [1, max_n].
  int n = 1;

  bool greedy() const { return temperature == 0.0f; }

  // INVALID_ARGUMENT naming the field and the limit, for the ranges above.
  // `max_logprobs` bounds `logprobs`; `max_stop` bounds stop strings + ids;
  // `max_n` bounds `n` (its message names the wire field, sampling.n).
  absl::Status Validate(int max_logprobs = kDefaultMaxLogprobs, int max_stop = kDefaultMaxStop,
                        int max_n = kDefaultMaxN) const;
};

}  // namespace tessera
