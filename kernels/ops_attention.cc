// Validation and device dispatch of the attention-side ops of kernels/ops.h:
// the rotary table and ApplyRope, KvStore, the fused RopeAndKvStore, and
// PagedAttention (checks as described in kernels/op_checks.h).
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/op_checks.h"
#include "kernels/ops.h"
#if TESSERA_HAVE_CUDA
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/scratch.h"
#endif

namespace tessera::ops {

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

}  // namespace tessera::ops
