// Sampler: picks the next token of each sequence from its row of logits, with
// vLLM's semantics. Runs on rank 0 over the gathered (full-vocabulary) logits.
//
// Per row, in this order:
//   1. penalties: repetition (HF/vLLM: over the set of prompt + output tokens,
//      logit > 0 ? logit / p : logit * p), then frequency and presence over the
//      OUTPUT tokens only: logit -= frequency * count + presence * (count > 0);
//   2. then the one sampling rule of kernels/ops.h (Sample), the same on the
//      CPU and in the CUDA kernel (kernels/sampling_rule.h, shared
//      arithmetic): NaN logits become -inf, +inf the largest finite float;
//      temperature below 1e-5 (as vLLM) is greedy, argmax with ties to the
//      lowest id; otherwise, with weights w = exp((x - max) / T) and tokens
//      ordered by logit (ties: lower id first), top-k keeps the first k,
//      top-p the shortest prefix of those reaching top_p of their weight,
//      min-p the tokens with w >= min_p (p_i >= min_p * p_max), and one draw
//      picks in id order over what is kept, in 40-bit fixed point. A seeded
//      row thus gets the same token here as from ops::Sample on a GPU.
//
// Logprobs are the log-softmax of the logits AFTER penalties and BEFORE
// temperature / top-k / top-p / min-p: they describe the model's (penalised)
// distribution, not the truncated one the token was drawn from. They are only
// computed when params->logprobs > 0 (that costs a pass of exp() over the
// vocabulary, which greedy decoding otherwise avoids); otherwise `logprob` is
// NaN and `top_logprobs` empty.
//
// Determinism: the one uniform draw a row uses is a counter-based function of
// (row.seed, row.step) only (splitmix64 stream), and the draw never depends
// on whether logprobs are asked for: a sequence gets the same tokens whatever
// else is in the batch, wherever its row sits, on either device, and when
// resumed elsewhere from (seed, position).
//
// If every logit of a row is -inf or NaN, the row yields token 0 with logprob
// -inf (and top_logprobs tokens 0..n-1 at -inf); nothing is flagged.
//
// Thread-safety: not thread-safe (scratch buffers); one Sampler per engine
// thread. Sample() itself parallelises over rows with OpenMP.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "common/api/sampling_params.h"

namespace tessera {

// One row of logits to sample from, and what the sampler needs to know about
// its sequence.
struct SamplingRow {
  const SamplingParams* params = nullptr;  // required; validated
  std::span<const int32_t> prompt_tokens;  // for the repetition penalty
  std::span<const int32_t> output_tokens;  // for all penalties
  uint64_t seed =
      0;  // per sequence; the engine always supplies one (random when the request has none)
  int64_t step = 0;  // index of the token being sampled (= output_tokens.size())
};

struct SampleResult {
  int32_t token = 0;
  float logprob = 0.0f;  // of `token`; NaN unless params->logprobs > 0
  // The params->logprobs most likely tokens and their logprobs, highest first
  // (ties: lower id first). Empty when params->logprobs == 0.
  std::vector<std::pair<int32_t, float>> top_logprobs;
};

// The uniform double in [0, 1) used for the draw of (seed, step). Exposed for
// tests and for callers that want to reproduce a draw.
double SamplerUniform(uint64_t seed, int64_t step);

class Sampler {
 public:
  Sampler();
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // logits: [rows.size(), vocab] float32, row-major; modified in place
  // (penalties; NaN/inf clean-up except on the greedy, no-logprobs path). Requires vocab > 0 and
  // every rows[i].params non-null. Prompt/output token ids outside [0, vocab) are ignored by the
  // penalties. Returns one result per row, in row order.
  std::vector<SampleResult> Sample(float* logits, int64_t vocab, std::span<const SamplingRow> rows);

 private:
  struct Scratch;
  std::vector<std::unique_ptr<Scratch>> scratch_;  // one per OpenMP thread
};

}  // namespace tessera
