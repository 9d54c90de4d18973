// CPU implementation of ops::Sample (kernels/ops.h), the same rule as the
// CUDA kernel (kernels/cuda/sampling.cu): exact fixed-point weights, top-k and
// top-p by sorting the candidates, the pick by a scan in id order. Callers go
// through tessera::ops, which validates shapes and dtypes first.
// Thread-safety: each call touches only its arguments.
#pragma once

#include "absl/status/status.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace tessera::ops::cpu {

absl::Status Sample(const Tensor& logits, const SamplingTensors& params, Tensor& tokens,
                    Tensor& logprobs);

}  // namespace tessera::ops::cpu
