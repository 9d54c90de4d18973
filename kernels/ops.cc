// Validation and device dispatch for kernels/ops.h. Every op checks, before
// touching data: each tensor is defined, has the expected dtype, rank and
// dimensions, all tensors share one device, and outputs do not overlap inputs
// (except where ops.h allows it). Failures are INVALID_ARGUMENT messages of
// the form "Linear: w must be float32 [64, 32], got float32 [64, 30] on cpu".
#include "kernels/ops.h"

#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/cpu/sampling_cpu.h"
#if TESSERA_HAVE_CUDA
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/scratch.h"
#endif

// TESSERA_CUDA_OP(Fn(args)): the CUDA branch of an op's dispatch, a lambda
// calling cuda::Fn(args), or reporting that the CUDA path is not built.
#if TESSERA_HAVE_CUDA
#define TESSERA_CUDA_OP(call) [&]() -> absl::Status { return cuda::call; }
#else
#define TESSERA_CUDA_OP(call) [&]() -> absl::Status { return CudaNotBuilt(kOp); }
#endif

namespace tessera::ops {
namespace {

// What element type a tensor argument must have. kFloat is the activation /
// weight type of the tensor's device: float32 on the CPU; float32, float16 or
// bfloat16 on CUDA.
enum class Kind { kFloat, kInt32, kInt64 };

constexpr int64_t kAny = -1;  // any size in an expected shape

absl::string_view DeviceName(Device device) {
  switch (device) {
    case Device::kCpu:
      return "cpu";
    case Device::kCuda:
      return "cuda";
  }
  return "unknown";
}

std::string Describe(const Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  return absl::StrCat(DTypeName(t.dtype()), " ", t.ShapeString(), " on ", DeviceName(t.device()));
}

bool KindAccepts(Kind kind, const Tensor& t) {
  switch (kind) {
    case Kind::kInt32:
      return t.dtype() == DType::kInt32;
    case Kind::kInt64:
      return t.dtype() == DType::kInt64;
    case Kind::kFloat:
      switch (t.device()) {
        case Device::kCpu:
          return t.dtype() == DType::kFloat32;
        case Device::kCuda:
          return t.dtype() == DType::kFloat32 || t.dtype() == DType::kFloat16 ||
                 t.dtype() == DType::kBFloat16;
      }
  }
  return false;
}

absl::string_view KindName(Kind kind, Device device) {
  switch (kind) {
    case Kind::kInt32:
      return "int32";
    case Kind::kInt64:
      return "int64";
    case Kind::kFloat:
      switch (device) {
        case Device::kCpu:
          return "float32";
        case Device::kCuda:
          return "float32/float16/bfloat16";
      }
  }
  return "?";
}

// `name` must be a defined tensor of `kind` whose shape matches `shape`
// (kAny matches any size).
absl::Status Expect(absl::string_view op, absl::string_view name, const Tensor& t, Kind kind,
                    std::initializer_list<int64_t> shape) {
  bool ok = t.defined() && KindAccepts(kind, t) && t.ndim() == static_cast<int>(shape.size());
  int i = 0;
  for (int64_t want : shape) {
    if (!ok) break;
    ok = want == kAny || t.dim(i) == want;
    ++i;
  }
  if (ok) return absl::OkStatus();
  std::vector<std::string> dims;
  for (int64_t want : shape) dims.push_back(want == kAny ? "*" : absl::StrCat(want));
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": ", name, " must be ", KindName(kind, t.device()), " [",
                   absl::StrJoin(dims, ", "), "], got ", Describe(t)));
}

struct Arg {
  absl::string_view name;
  const Tensor* tensor;
};

absl::Status SameDevice(absl::string_view op, std::initializer_list<Arg> args) {
  const Arg& first = *args.begin();
  for (const Arg& a : args) {
    if (a.tensor->device() != first.tensor->device()) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": all tensors must be on one device, but ", a.name, " is on ",
                       DeviceName(a.tensor->device()), " and ", first.name, " on ",
                       DeviceName(first.tensor->device())));
    }
  }
  return absl::OkStatus();
}

// Floating tensors of one call share the dtype of the first.
absl::Status SameDType(absl::string_view op, std::initializer_list<Arg> args) {
  const Arg& first = *args.begin();
  for (const Arg& a : args) {
    if (a.tensor->dtype() != first.tensor->dtype()) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": ", a.name, " is ", DTypeName(a.tensor->dtype()), " but ", first.name,
                       " is ", DTypeName(first.tensor->dtype()), "; they must match"));
    }
  }
  return absl::OkStatus();
}

bool Overlap(const Tensor& a, const Tensor& b) {
  if (a.nbytes() == 0 || b.nbytes() == 0) return false;
  const auto* a0 = static_cast<const char*>(a.data());
  const auto* b0 = static_cast<const char*>(b.data());
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

absl::Status NoOverlap(absl::string_view op, Arg out, std::initializer_list<Arg> inputs) {
  for (const Arg& in : inputs) {
    if (Overlap(*out.tensor, *in.tensor)) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": ", out.name, " must not overlap ", in.name, " in memory"));
    }
  }
  return absl::OkStatus();
}

[[maybe_unused]] absl::Status CudaNotBuilt(absl::string_view op) {
  return absl::FailedPreconditionError(
      absl::StrCat(op, ": CUDA path not built (this binary has only the CPU kernels)"));
}

// Runs `cpu` for CPU tensors and `cuda` (see TESSERA_CUDA_OP) for CUDA ones.
template <typename Cpu, typename Cuda>
absl::Status Dispatch(absl::string_view op, Device device, Cpu&& cpu, Cuda&& cuda) {
  switch (device) {
    case Device::kCpu:
      return cpu();
    case Device::kCuda:
      return cuda();
  }
  return absl::InternalError(absl::StrCat(op, ": unknown device"));
}

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

Tensor BuildRopeCache(int head_dim, int64_t max_positions, double theta,
                      const RopeScaling& scaling) {
  return cpu::BuildRopeCache(head_dim, max_positions, theta, scaling);
}

namespace {

// ApplyRope's checks, reported under `op`.
absl::Status CheckRope(absl::string_view kOp, const Tensor& positions, const Tensor& q,
                       const Tensor& k, int head_dim, const Tensor& cos_sin) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": head_dim must be positive and even, got ", head_dim));
  }
  RETURN_IF_ERROR(Expect(kOp, "positions", positions, Kind::kInt32, {kAny}));
  RETURN_IF_ERROR(Expect(kOp, "q", q, Kind::kFloat, {positions.dim(0), kAny}));
  RETURN_IF_ERROR(Expect(kOp, "k", k, Kind::kFloat, {positions.dim(0), kAny}));
  RETURN_IF_ERROR(Expect(kOp, "cos_sin", cos_sin, Kind::kFloat, {kAny, head_dim}));
  RETURN_IF_ERROR(
      SameDevice(kOp, {{"positions", &positions}, {"q", &q}, {"k", &k}, {"cos_sin", &cos_sin}}));
  RETURN_IF_ERROR(SameDType(kOp, {{"q", &q}, {"k", &k}}));
  RETURN_IF_ERROR(NoOverlap(kOp, {"q", &q}, {{"k", &k}, {"cos_sin", &cos_sin}}));
  RETURN_IF_ERROR(NoOverlap(kOp, {"k", &k}, {{"cos_sin", &cos_sin}}));
  if (q.dim(1) % head_dim != 0 || k.dim(1) % head_dim != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": q ", q.ShapeString(), " and k ", k.ShapeString(),
                     " must have a multiple of head_dim = ", head_dim, " columns"));
  }
  if (cos_sin.device() == Device::kCuda && cos_sin.dtype() != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": cos_sin must be float32 on cuda too (upload BuildRopeCache's table), got ",
        Describe(cos_sin)));
  }
  return absl::OkStatus();
}

// KvStore's checks, reported under `op`.
absl::Status CheckKvStore(absl::string_view kOp, const Tensor& k, const Tensor& v,
                          const Tensor& slot_mapping, const Tensor& k_cache,
                          const Tensor& v_cache) {
  RETURN_IF_ERROR(Expect(kOp, "k_cache", k_cache, Kind::kFloat, {kAny, kAny, kAny, kAny}));
  const int64_t row = k_cache.dim(2) * k_cache.dim(3);
  RETURN_IF_ERROR(Expect(kOp, "v_cache", v_cache, Kind::kFloat,
                         {k_cache.dim(0), k_cache.dim(1), k_cache.dim(2), k_cache.dim(3)}));
  RETURN_IF_ERROR(Expect(kOp, "k", k, Kind::kFloat, {kAny, row}));
  RETURN_IF_ERROR(Expect(kOp, "v", v, Kind::kFloat, {k.dim(0), row}));
  RETURN_IF_ERROR(Expect(kOp, "slot_mapping", slot_mapping, Kind::kInt64, {k.dim(0)}));
  RETURN_IF_ERROR(SameDevice(kOp, {{"k", &k},
                                   {"v", &v},
                                   {"slot_mapping", &slot_mapping},
                                   {"k_cache", &k_cache},
                                   {"v_cache", &v_cache}}));
  RETURN_IF_ERROR(
      SameDType(kOp, {{"k", &k}, {"v", &v}, {"k_cache", &k_cache}, {"v_cache", &v_cache}}));
  RETURN_IF_ERROR(
      NoOverlap(kOp, {"k_cache", &k_cache},
                {{"v_cache", &v_cache}, {"k", &k}, {"v", &v}, {"slot_mapping", &slot_mapping}}));
  RETURN_IF_ERROR(NoOverlap(kOp, {"v_cache", &v_cache},
                            {{"k", &k}, {"v", &v}, {"slot_mapping", &slot_mapping}}));
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyRope(const Tensor& positions, Tensor& q, Tensor& k, int head_dim,
                       const Tensor& cos_sin) {
  constexpr absl::string_view kOp = "ApplyRope";
  RETURN_IF_ERROR(CheckRope(kOp, positions, q, k, head_dim, cos_sin));
  return Dispatch(
      kOp, q.device(), [&] { return cpu::ApplyRope(positions, q, k, head_dim, cos_sin); },
      TESSERA_CUDA_OP(ApplyRope(positions, q, k, head_dim, cos_sin)));
}

absl::Status KvStore(const Tensor& k, const Tensor& v, const Tensor& slot_mapping, Tensor& k_cache,
                     Tensor& v_cache) {
  constexpr absl::string_view kOp = "KvStore";
  RETURN_IF_ERROR(CheckKvStore(kOp, k, v, slot_mapping, k_cache, v_cache));
  return Dispatch(
      kOp, k.device(), [&] { return cpu::KvStore(k, v, slot_mapping, k_cache, v_cache); },
      TESSERA_CUDA_OP(KvStore(k, v, slot_mapping, k_cache, v_cache)));
}

absl::Status RopeAndKvStore(const Tensor& positions, Tensor& q, Tensor& k, const Tensor& v,
                            int head_dim, const Tensor& cos_sin, const Tensor& slot_mapping,
                            Tensor& k_cache, Tensor& v_cache) {
  constexpr absl::string_view kOp = "RopeAndKvStore";
  RETURN_IF_ERROR(CheckRope(kOp, positions, q, k, head_dim, cos_sin));
  RETURN_IF_ERROR(CheckKvStore(kOp, k, v, slot_mapping, k_cache, v_cache));
  if (k_cache.dim(3) != head_dim) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": head_dim = ", head_dim,
                                                   " but the cache has head_dim ", k_cache.dim(3)));
  }
  RETURN_IF_ERROR(SameDevice(kOp, {{"q", &q}, {"k", &k}}));
  RETURN_IF_ERROR(SameDType(kOp, {{"q", &q}, {"k", &k}}));
  RETURN_IF_ERROR(NoOverlap(kOp, {"q", &q},
                            {{"v", &v},
                             {"slot_mapping", &slot_mapping},
                             {"k_cache", &k_cache},
                             {"v_cache", &v_cache},
                             {"positions", &positions}}));
  RETURN_IF_ERROR(NoOverlap(
      kOp, {"k", &k}, {{"v", &v}, {"slot_mapping", &slot_mapping}, {"positions", &positions}}));
  return Dispatch(
      kOp, q.device(),
      [&]() -> absl::Status {
        RETURN_IF_ERROR(cpu::ApplyRope(positions, q, k, head_dim, cos_sin));
        return cpu::KvStore(k, v, slot_mapping, k_cache, v_cache);
      },
      TESSERA_CUDA_OP(
          RopeAndKvStore(positions, q, k, v, head_dim, cos_sin, slot_mapping, k_cache, v_cache)));
}

absl::Status PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                            const AttentionMetadata& md, int num_heads, int num_kv_heads,
                            float scale, Tensor& out) {
  constexpr absl::string_view kOp = "PagedAttention";
  if (num_heads <= 0 || num_kv_heads <= 0 || num_heads % num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": num_heads (", num_heads,
                                                   ") must be a positive multiple of ",
                                                   "num_kv_heads (", num_kv_heads, ")"));
  }
  RETURN_IF_ERROR(Expect(kOp, "k_cache", k_cache, Kind::kFloat, {kAny, kAny, num_kv_heads, kAny}));
  const int64_t hd = k_cache.dim(3);
  RETURN_IF_ERROR(Expect(kOp, "v_cache", v_cache, Kind::kFloat,
                         {k_cache.dim(0), k_cache.dim(1), num_kv_heads, hd}));
  RETURN_IF_ERROR(Expect(kOp, "q", q, Kind::kFloat, {kAny, num_heads * hd}));
  RETURN_IF_ERROR(Expect(kOp, "out", out, Kind::kFloat, {q.dim(0), num_heads * hd}));
  RETURN_IF_ERROR(Expect(kOp, "md.seq_lens", md.seq_lens, Kind::kInt32, {kAny}));
  const int64_t batch = md.seq_lens.dim(0);
  RETURN_IF_ERROR(Expect(kOp, "md.query_start_loc", md.query_start_loc, Kind::kInt32, {batch + 1}));
  RETURN_IF_ERROR(Expect(kOp, "md.block_tables", md.block_tables, Kind::kInt32, {batch, kAny}));
  RETURN_IF_ERROR(SameDevice(kOp, {{"q", &q},
                                   {"k_cache", &k_cache},
                                   {"v_cache", &v_cache},
                                   {"out", &out},
                                   {"md.query_start_loc", &md.query_start_loc},
                                   {"md.seq_lens", &md.seq_lens},
                                   {"md.block_tables", &md.block_tables}}));
  RETURN_IF_ERROR(
      SameDType(kOp, {{"q", &q}, {"k_cache", &k_cache}, {"v_cache", &v_cache}, {"out", &out}}));
  RETURN_IF_ERROR(
      NoOverlap(kOp, {"out", &out}, {{"q", &q}, {"k_cache", &k_cache}, {"v_cache", &v_cache}}));
  if (k_cache.dim(1) <= 0 || hd <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": k_cache ", k_cache.ShapeString(),
                                                   " needs a positive block size and head_dim"));
  }
  if (!std::isfinite(scale)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": scale must be finite, got ", scale));
  }
  if (md.num_decodes < -1 || md.num_decodes > batch) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": md.num_decodes must be -1 (unknown) or in [0, ", batch,
                     "] (the batch's sequences), got ", md.num_decodes));
  }
  return Dispatch(
      kOp, q.device(),
      [&] {
        return cpu::PagedAttention(q, k_cache, v_cache, md, num_heads, num_kv_heads, scale, out);
      },
      TESSERA_CUDA_OP(
          PagedAttention(q, k_cache, v_cache, md, num_heads, num_kv_heads, scale, out)));
}

int64_t ScratchGeneration() {
#if TESSERA_HAVE_CUDA
  return cuda::ScratchGeneration();
#else
  return 0;
#endif
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
