// Synthetic step plans for gpu_bench: prefill and decode steps over
// sequences laid out in fixed KV block ranges (sequence s in blocks
// [s * bps, (s + 1) * bps)), with random token ids. Pure functions.
#pragma once

#include <random>

#include "tessera/v1/step_plan.pb.h"

namespace tessera::gpu_bench {

// A prefill step of `seqs` sequences [first, first + seqs) of `len` tokens
// each, sequence s in blocks [s * bps, (s + 1) * bps).
v1::StepPlan PrefillPlan(int first, int seqs, int len, int block_size, int bps, int vocab,
                         std::mt19937& rng);

// Decode step `step` of sequences [0, batch): the token at position
// context + step.
v1::StepPlan DecodePlan(int batch, int context, int step, int block_size, int bps, int vocab,
                        std::mt19937& rng);

}  // namespace tessera::gpu_bench
