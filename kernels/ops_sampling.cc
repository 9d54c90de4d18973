// Validation and device dispatch of Sample (kernels/ops.h), whose per-row
// parameters are float32 on every device (checks as in kernels/op_checks.h).
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cpu/sampling_cpu.h"
#include "kernels/op_checks.h"
#include "kernels/ops.h"
#if TESSERA_HAVE_CUDA
#include "kernels/cuda/ops_cuda.h"
#endif

namespace tessera::ops {
namespace {

// `name` must be float32 whatever the device (outputs and parameters that
// are float32 also on CUDA).
absl::Status ExpectFloat32(absl::string_view op, absl::string_view name, const Tensor& t,
                           int64_t rows) {
  if (t.defined() && t.dtype() == DType::kFloat32 && t.ndim() == 1 && t.dim(0) == rows) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": ", name, " must be float32 [", rows, "], got ", Describe(t)));
}

}  // namespace

absl::Status Sample(const Tensor& logits, const SamplingTensors& params, Tensor& tokens,
                    Tensor& logprobs) {
  constexpr absl::string_view kOp = "Sample";
  RETURN_IF_ERROR(Expect(kOp, "logits", logits, Kind::kFloat, {kAny, kAny}));
  const int64_t n = logits.dim(0), vocab = logits.dim(1);
  if (vocab < 1 || vocab > (int64_t{1} << 23)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": vocab (logits.dim(1)) must be in [1, 2^23], got ", vocab));
  }
  if (n > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": too many rows: ", n));
  }
  RETURN_IF_ERROR(Expect(kOp, "tokens", tokens, Kind::kInt32, {n}));
  RETURN_IF_ERROR(ExpectFloat32(kOp, "logprobs", logprobs, n));
  RETURN_IF_ERROR(ExpectFloat32(kOp, "params.temperature", params.temperature, n));
  RETURN_IF_ERROR(Expect(kOp, "params.top_k", params.top_k, Kind::kInt32, {n}));
  RETURN_IF_ERROR(ExpectFloat32(kOp, "params.top_p", params.top_p, n));
  RETURN_IF_ERROR(ExpectFloat32(kOp, "params.min_p", params.min_p, n));
  RETURN_IF_ERROR(Expect(kOp, "params.seed", params.seed, Kind::kInt64, {n}));
  RETURN_IF_ERROR(Expect(kOp, "params.step", params.step, Kind::kInt64, {n}));
  RETURN_IF_ERROR(SameDevice(kOp, {{"logits", &logits},
                                   {"tokens", &tokens},
                                   {"logprobs", &logprobs},
                                   {"params.temperature", &params.temperature},
                                   {"params.top_k", &params.top_k},
                                   {"params.top_p", &params.top_p},
                                   {"params.min_p", &params.min_p},
                                   {"params.seed", &params.seed},
                                   {"params.step", &params.step}}));
  RETURN_IF_ERROR(
      NoOverlap(kOp, {"tokens", &tokens}, {{"logits", &logits}, {"logprobs", &logprobs}}));
  RETURN_IF_ERROR(NoOverlap(kOp, {"logprobs", &logprobs}, {{"logits", &logits}}));
  return Dispatch(
      kOp, logits.device(), [&] { return cpu::Sample(logits, params, tokens, logprobs); },
      TESSERA_CUDA_OP(Sample(logits, params, tokens, logprobs)));
}

}  // namespace tessera::ops
