// CPU implementation of ops::Sample (kernels/ops.h): the one sampling rule of
// kernels/sampling_rule.h, reached on the host by sorting only the tokens that
// can be drawn (those within exp(-30) of the best) instead of the CUDA
// kernel's radix selects (kernels/sampling_row.h). The two give the same token
// for the same clean logits, bit for bit: the arithmetic is shared and every
// decision is an integer comparison (tests/kernels/sampling_rule_test.cc runs
// the kernel's algorithm through its host twin to show it).
//
// RowSampler is the per-row draw that the worker's Sampler (after penalties)
// and ops::cpu::Sample share. Callers of Sample go through tessera::ops, which
// validates shapes and dtypes first.
// Thread-safety: a RowSampler is used by one thread at a time (scratch);
// Sample touches only its arguments.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "kernels/ops.h"
#include "kernels/sampling_row.h"
#include "kernels/tensor.h"

namespace tessera::ops::cpu {

class RowSampler {
 public:
  // The token the rule picks from `x`, `vocab` >= 1 clean logits (each
  // sampling::Clean(raw): no NaN, no +inf, no -0): greedy, or top-k -> top-p
  // -> min-p -> the draw of sampling::Uniform(p.seed, p.step). Token 0 when
  // every logit is -inf.
  int32_t Pick(const float* x, int64_t vocab, const sampling::RowParams& p);

 private:
  struct Candidate {
    float x;
    float w;  // sampling::Weight
    int32_t id;
  };
  std::vector<Candidate> cand_;
};

absl::Status Sample(const Tensor& logits, const SamplingTensors& params, Tensor& tokens,
                    Tensor& logprobs);

}  // namespace tessera::ops::cpu
