// The host twin of the CUDA sampling kernel: kernels/sampling_row.h's
// SampleRowOnBlock — the kernel's own per-row code (radix-select cuts,
// fixed-point scans) — run on the host by a block of one thread. It is slow
// (about a dozen passes over the row) and exists so that tests can show,
// without a GPU, that the kernel's algorithm and the CPU sampler
// (kernels/cpu/sampling_cpu.h) pick the same token.
// Thread-safety: pure functions of their arguments.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/ops.h"
#include "kernels/sampling_row.h"
#include "kernels/tensor.h"

namespace tessera::ops::cpu {

// One row of raw float32 logits (NaN/inf cleaned as the kernel does).
sampling::RowResult SampleRowTwin(const float* logits, int64_t vocab,
                                  const sampling::RowParams& params);

// ops::Sample's contract on CPU tensors (float32 logits), row by row.
absl::Status SampleTwin(const Tensor& logits, const SamplingTensors& params, Tensor& tokens,
                        Tensor& logprobs);

}  // namespace tessera::ops::cpu
