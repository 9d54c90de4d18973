// Validation and device dispatch of the dense per-row ops of kernels/ops.h:
// the CPU thread settings, Embedding, RmsNorm, FusedAddRmsNorm, Linear,
// SiluAndMul and GatherRows. The checks (kernels/op_checks.h) fail with
// INVALID_ARGUMENT messages of the form
// "Linear: w must be float32 [64, 32], got float32 [64, 30] on cpu".
// The attention-side ops are in ops_attention.cc, Sample in ops_sampling.cc.
#include "kernels/ops.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/op_checks.h"
#if TESSERA_HAVE_CUDA
#include "kernels/cuda/ops_cuda.h"
#endif

namespace tessera::ops {

void SetCpuThreads(int n) { cpu::SetThreads(n); }

void SetCpuBatchInvariant(bool on) { cpu::SetBatchInvariant(on); }

absl::Status Embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out) {
  constexpr absl::string_view kOp = "Embedding";
  RETURN_IF_ERROR(Expect(kOp, "ids", ids, Kind::kInt32, {kAny}));
  RETURN_IF_ERROR(Expect(kOp, "table", table, Kind::kFloat, {kAny, kAny}));
  RETURN_IF_ERROR(Expect(kOp, "out", out, Kind::kFloat, {ids.dim(0), table.dim(1)}));
  RETURN_IF_ERROR(SameDevice(kOp, {{"ids", &ids}, {"table", &table}, {"out", &out}}));
  RETURN_IF_ERROR(SameDType(kOp, {{"table", &table}, {"out", &out}}));
  RETURN_IF_ERROR(NoOverlap(kOp, {"out", &out}, {{"ids", &ids}, {"table", &table}}));
  if (vocab_start < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": vocab_start must be >= 0, got ", vocab_start));
  }
  return Dispatch(
      kOp, ids.device(),
      [&] {
        cpu::Embedding(ids, table, vocab_start, out);
        return absl::OkStatus();
      },
      TESSERA_CUDA_OP(Embedding(ids, table, vocab_start, out)));
}

absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  constexpr absl::string_view kOp = "RmsNorm";
  RETURN_IF_ERROR(Expect(kOp, "x", x, Kind::kFloat, {kAny, kAny}));
  RETURN_IF_ERROR(Expect(kOp, "weight", weight, Kind::kFloat, {x.dim(1)}));
  RETURN_IF_ERROR(Expect(kOp, "out", out, Kind::kFloat, {x.dim(0), x.dim(1)}));
  RETURN_IF_ERROR(SameDevice(kOp, {{"x", &x}, {"weight", &weight}, {"out", &out}}));
  RETURN_IF_ERROR(SameDType(kOp, {{"x", &x}, {"weight", &weight}, {"out", &out}}));
  if (out.data() != x.data()) {  // in place is fine, a partial overlap is not
    RETURN_IF_ERROR(NoOverlap(kOp, {"out", &out}, {{"x", &x}}));
  }
  RETURN_IF_ERROR(NoOverlap(kOp, {"out", &out}, {{"weight", &weight}}));
  if (!(eps >= 0.f)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": eps must be >= 0, got ", eps));
  }
  return Dispatch(
      kOp, x.device(),
      [&] {
        cpu::RmsNorm(x, weight, eps, out);
        return absl::OkStatus();
      },
      TESSERA_CUDA_OP(RmsNorm(x, weight, eps, out)));
}

absl::Status FusedAddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps) {
  constexpr absl::string_view kOp = "FusedAddRmsNorm";
  RETURN_IF_ERROR(Expect(kOp, "x", x, Kind::kFloat, {kAny, kAny}));
  RETURN_IF_ERROR(Expect(kOp, "residual", residual, Kind::kFloat, {x.dim(0), x.dim(1)}));
  RETURN_IF_ERROR(Expect(kOp, "weight", weight, Kind::kFloat, {x.dim(1)}));
  RETURN_IF_ERROR(SameDevice(kOp, {{"x", &x}, {"residual", &residual}, {"weight", &weight}}));
  RETURN_IF_ERROR(SameDType(kOp, {{"x", &x}, {"residual", &residual}, {"weight", &weight}}));
  RETURN_IF_ERROR(NoOverlap(kOp, {"x", &x}, {{"residual", &residual}, {"weight", &weight}}));
  RETURN_IF_ERROR(NoOverlap(kOp, {"residual", &residual}, {{"weight", &weight}}));
  if (!(eps >= 0.f)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": eps must be >= 0, got ", eps));
  }
  return Dispatch(
      kOp, x.device(),
      [&] {
        cpu::FusedAddRmsNorm(x, residual, weight, eps);
        return absl::OkStatus();
      },
      TESSERA_CUDA_OP(FusedAddRmsNorm(x, residual, weight, eps)));
}

absl::Status Linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  constexpr absl::string_view kOp = "Linear";
  RETURN_IF_ERROR(Expect(kOp, "x", x, Kind::kFloat, {kAny, kAny}));
  RETURN_IF_ERROR(Expect(kOp, "w", w, Kind::kFloat, {kAny, x.dim(1)}));
  RETURN_IF_ERROR(Expect(kOp, "out", out, Kind::kFloat, {x.dim(0), w.dim(0)}));
  RETURN_IF_ERROR(SameDevice(kOp, {{"x", &x}, {"w", &w}, {"out", &out}}));
  RETURN_IF_ERROR(SameDType(kOp, {{"x", &x}, {"w", &w}}));
  if (out.dtype() != x.dtype()) {
    // Half-precision inputs may write float32 (the lm_head's logits), without
    // a bias (cuBLASLt's bias epilogue would want it in the output's type).
    if (out.dtype() != DType::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat(kOp, ": out is ", DTypeName(out.dtype()), " but x is ", DTypeName(x.dtype()),
                       "; out must be ", DTypeName(x.dtype()), " or float32"));
    }
    if (bias != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(kOp, ": a float32 out from ", DTypeName(x.dtype()),
                       " inputs takes no bias (got one); add it separately or use a ",
                       DTypeName(x.dtype()), " out"));
    }
  }
  RETURN_IF_ERROR(NoOverlap(kOp, {"out", &out}, {{"x", &x}, {"w", &w}}));
  if (bias != nullptr) {
    RETURN_IF_ERROR(Expect(kOp, "bias", *bias, Kind::kFloat, {w.dim(0)}));
    RETURN_IF_ERROR(SameDevice(kOp, {{"x", &x}, {"bias", bias}}));
    RETURN_IF_ERROR(SameDType(kOp, {{"x", &x}, {"bias", bias}}));
    RETURN_IF_ERROR(NoOverlap(kOp, {"out", &out}, {{"bias", bias}}));
  }
  if (x.dim(0) > INT32_MAX || x.dim(1) > INT32_MAX || w.dim(0) > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(kOp,
                                                   ": dimensions exceed the BLAS int range: x ",
                                                   x.ShapeString(), ", w ", w.ShapeString()));
  }
  return Dispatch(
      kOp, x.device(),
      [&] {
        cpu::Linear(x, w, bias, out);
        return absl::OkStatus();
      },
      TESSERA_CUDA_OP(Linear(x, w, bias, out)));
}

absl::Status SiluAndMul(const Tensor& x, Tensor& out) {
  constexpr absl::string_view kOp = "SiluAndMul";
  RETURN_IF_ERROR(Expect(kOp, "x", x, Kind::kFloat, {kAny, kAny}));
  if (x.dim(1) % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": x must have an even number of columns (gate then up), got ", x.ShapeString()));
  }
  RETURN_IF_ERROR(Expect(kOp, "out", out, Kind::kFloat, {x.dim(0), x.dim(1) / 2}));
  RETURN_IF_ERROR(SameDevice(kOp, {{"x", &x}, {"out", &out}}));
  RETURN_IF_ERROR(SameDType(kOp, {{"x", &x}, {"out", &out}}));
  RETURN_IF_ERROR(NoOverlap(kOp, {"out", &out}, {{"x", &x}}));
  return Dispatch(
      kOp, x.device(),
      [&] {
        cpu::SiluAndMul(x, out);
        return absl::OkStatus();
      },
      TESSERA_CUDA_OP(SiluAndMul(x, out)));
}

absl::Status GatherRows(const Tensor& x, const Tensor& indices, Tensor& out) {
  constexpr absl::string_view kOp = "GatherRows";
  RETURN_IF_ERROR(Expect(kOp, "x", x, Kind::kFloat, {kAny, kAny}));
  RETURN_IF_ERROR(Expect(kOp, "indices", indices, Kind::kInt32, {kAny}));
  RETURN_IF_ERROR(Expect(kOp, "out", out, Kind::kFloat, {indices.dim(0), x.dim(1)}));
  RETURN_IF_ERROR(SameDevice(kOp, {{"x", &x}, {"indices", &indices}, {"out", &out}}));
  RETURN_IF_ERROR(SameDType(kOp, {{"x", &x}, {"out", &out}}));
  RETURN_IF_ERROR(NoOverlap(kOp, {"out", &out}, {{"x", &x}, {"indices", &indices}}));
  return Dispatch(
      kOp, x.device(), [&] { return cpu::GatherRows(x, indices, out); },
      TESSERA_CUDA_OP(GatherRows(x, indices, out)));
}

}  // namespace tessera::ops
