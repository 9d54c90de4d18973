// The CUDA implementations of the elementwise, normalisation, GEMM, rotary,
// KV-store and copy ops against the CPU ops on the same inputs, in float32,
// bfloat16 and float16, on random data of several shapes (odd sizes that take
// the scalar paths, sizes that take the 128-bit paths, rows longer than one
// thread block covers). The inputs are rounded to the dtype first and the CPU
// op runs on the rounded values, so only the CUDA kernel's own error counts.
//
// Bounds (testing::RelTol): copies (Embedding, GatherRows, KvStore) are exact
// in every dtype. Elementwise/norm/rotary outputs: |err| <= rtol |ref| + 1e-6
// with rtol 1e-5 for float32 (the two paths differ only in the order of the
// sum of squares and in FMA contraction: ~1e-7 relative), 1e-2 for bfloat16 and
// 5e-3 for float16 (one rounding of the result, 2^-9 / 2^-12, plus one rounded
// intermediate in FusedAddRmsNorm, whose residual is stored in the dtype).
// GEMM: max |err| <= rtol * max |ref| (errors relative to the output's
// infinity norm: elementwise bounds are meaningless for dot products that
// cancel to ~0); float32 1e-5: both sides accumulate in float32 in different
// orders, ~sqrt(k) u |x||w| ~ 1e-6 of max |ref| for k <= 1024 (no TF32).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "tests/kernels/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera {
namespace {

using testing::Clone;
using testing::CudaTest;
using testing::Download;
using testing::DTypeTrace;
using testing::ElementwiseNear;
using testing::ExactlyEqual;
using testing::FloatDTypes;
using testing::NormwiseNear;
using testing::RandomFloats;
using testing::RelTol;
using testing::RoundTo;
using testing::SeedTrace;
using testing::TestSeed;
using testing::ToDevice;
using testing::ToDoubles;
using testing::ToHostFloat;
using testing::Upload;

constexpr double kAtol = 1e-6;

::testing::AssertionResult ElementwiseClose(const Tensor& dev, const Tensor& ref, DType dtype) {
  return ElementwiseNear(ToHostFloat(dev), ToDoubles(ref), RelTol(dtype), kAtol);
}

::testing::AssertionResult Exact(const Tensor& dev, const Tensor& ref) {
  Tensor got = ToHostFloat(dev);
  return ExactlyEqual(got.data_as<float>(), ref.data_as<float>(), ref.numel());
}

class CudaOpsTest : public CudaTest {};

// --- Embedding / GatherRows -------------------------------------------------

TEST_F(CudaOpsTest, EmbeddingMatchesCpuAndZeroesOtherShards) {
  const uint32_t seed = TestSeed(101);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (DType dtype : FloatDTypes()) {
    for (int64_t h : {1, 7, 64, 4096}) {
      SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " h ", h));
      const int64_t rows = 53, vocab_start = 100;
      Tensor table = RoundTo(RandomFloats(rng, {rows, h}), dtype);
      std::uniform_int_distribution<int32_t> id_dist(90, 160);  // in and around the shard
      std::vector<int32_t> ids(67);
      for (auto& id : ids) id = id_dist(rng);
      ids[0] = -1;
      ids[1] = vocab_start;
      ids[2] = vocab_start + rows - 1;
      ids[3] = vocab_start + rows;
      Tensor ids_t = Tensor::FromInts(ids, {67});
      Tensor ref = Tensor::Empty(DType::kFloat32, {67, h});
      ASSERT_TRUE(ops::Embedding(ids_t, table, vocab_start, ref).ok());
      Tensor out = Tensor::Empty(dtype, {67, h}, Device::kCuda);
      ASSERT_TRUE(ops::Embedding(Upload(ids_t), ToDevice(table, dtype), vocab_start, out).ok());
      EXPECT_TRUE(Exact(out, ref));
    }
  }
}

TEST_F(CudaOpsTest, GatherRowsMatchesCpuAndZeroesBadIndices) {
  const uint32_t seed = TestSeed(102);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (DType dtype : FloatDTypes()) {
    for (int64_t h : {3, 8, 1000, 32000}) {
      SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " h ", h));
      const int64_t n = 19;
      Tensor x = RoundTo(RandomFloats(rng, {n, h}), dtype);
      std::vector<int32_t> idx = {18, 0, 5, 5, 18, 7, 1};
      Tensor idx_t = Tensor::FromInts(idx, {7});
      Tensor ref = Tensor::Empty(DType::kFloat32, {7, h});
      ASSERT_TRUE(ops::GatherRows(x, idx_t, ref).ok());
      Tensor dx = ToDevice(x, dtype);
      Tensor out = Tensor::Empty(dtype, {7, h}, Device::kCuda);
      ASSERT_TRUE(ops::GatherRows(dx, Upload(idx_t), out).ok());
      EXPECT_TRUE(Exact(out, ref));
      // On CUDA an index outside [0, n) gives a zero row (the CPU rejects it).
      Tensor bad = Tensor::FromInts({-1, static_cast<int32_t>(n)}, {2});
      Tensor out2 = Tensor::Empty(dtype, {2, h}, Device::kCuda);
      ASSERT_TRUE(ops::GatherRows(dx, Upload(bad), out2).ok());
      Tensor got = ToHostFloat(out2);
      for (int64_t i = 0; i < got.numel(); ++i) ASSERT_EQ(got.data_as<float>()[i], 0.f) << i;
    }
  }
}

// --- RmsNorm / FusedAddRmsNorm ----------------------------------------------

TEST_F(CudaOpsTest, RmsNormMatchesCpu) {
  const uint32_t seed = TestSeed(103);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const float eps = 1e-5f;
  struct Shape {
    int64_t rows, h;
  };
  for (DType dtype : FloatDTypes()) {
    for (Shape s : {Shape{1, 8}, Shape{3, 1000}, Shape{5, 1001}, Shape{37, 4096}, Shape{4, 8192},
                    Shape{2, 16384}, Shape{96, 128}}) {
      SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " ", testing::ShapeTrace(s.rows, s.h)));
      Tensor x = RoundTo(RandomFloats(rng, {s.rows, s.h}, -2.f, 2.f), dtype);
      Tensor w = RoundTo(RandomFloats(rng, {s.h}, 0.5f, 1.5f), dtype);
      Tensor ref = Tensor::Empty(DType::kFloat32, {s.rows, s.h});
      ASSERT_TRUE(ops::RmsNorm(x, w, eps, ref).ok());
      Tensor dx = ToDevice(x, dtype), dw = ToDevice(w, dtype);
      Tensor out = Tensor::Empty(dtype, {s.rows, s.h}, Device::kCuda);
      ASSERT_TRUE(ops::RmsNorm(dx, dw, eps, out).ok());
      EXPECT_TRUE(ElementwiseClose(out, ref, dtype));
      ASSERT_TRUE(ops::RmsNorm(dx, dw, eps, dx).ok());  // in place
      EXPECT_TRUE(ElementwiseClose(dx, ref, dtype));
    }
  }
}

TEST_F(CudaOpsTest, FusedAddRmsNormMatchesCpu) {
  const uint32_t seed = TestSeed(104);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const float eps = 1e-6f;
  struct Shape {
    int64_t rows, h;
  };
  for (DType dtype : FloatDTypes()) {
    for (Shape s : {Shape{1, 16}, Shape{7, 999}, Shape{33, 4096}, Shape{3, 8192}}) {
      SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " ", testing::ShapeTrace(s.rows, s.h)));
      Tensor x = RoundTo(RandomFloats(rng, {s.rows, s.h}), dtype);
      Tensor res = RoundTo(RandomFloats(rng, {s.rows, s.h}, -3.f, 3.f), dtype);
      Tensor w = RoundTo(RandomFloats(rng, {s.h}, 0.5f, 1.5f), dtype);
      Tensor dx = ToDevice(x, dtype), dres = ToDevice(res, dtype), dw = ToDevice(w, dtype);
      ASSERT_TRUE(ops::FusedAddRmsNorm(x, res, w, eps).ok());  // CPU, in place
      ASSERT_TRUE(ops::FusedAddRmsNorm(dx, dres, dw, eps).ok());
      EXPECT_TRUE(ElementwiseClose(dres, res, dtype)) << "residual";
      EXPECT_TRUE(ElementwiseClose(dx, x, dtype)) << "normalised output";
    }
  }
}

// --- Linear ---------------------------------------------------------------------

TEST_F(CudaOpsTest, LinearMatchesCpuWithAndWithoutBias) {
  const uint32_t seed = TestSeed(105);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  struct Shape {
    int64_t n, k, m;
  };
  for (DType dtype : FloatDTypes()) {
    for (Shape s : {Shape{1, 64, 96}, Shape{1, 4096, 1024}, Shape{7, 33, 17}, Shape{64, 512, 384},
                    Shape{129, 1024, 257}, Shape{300, 256, 1000}}) {
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " n ", s.n, " k ", s.k, " m ", s.m,
                                  with_bias ? " with bias" : ""));
        Tensor x = RoundTo(RandomFloats(rng, {s.n, s.k}), dtype);
        Tensor w = RoundTo(RandomFloats(rng, {s.m, s.k}), dtype);
        Tensor b = RoundTo(RandomFloats(rng, {s.m}), dtype);
        Tensor ref = Tensor::Empty(DType::kFloat32, {s.n, s.m});
        ASSERT_TRUE(ops::Linear(x, w, with_bias ? &b : nullptr, ref).ok());
        Tensor db = ToDevice(b, dtype);
        Tensor out = Tensor::Empty(dtype, {s.n, s.m}, Device::kCuda);
        // Twice: the second call takes the cached algorithm.
        for (int rep = 0; rep < 2; ++rep) {
          absl::Status st =
              ops::Linear(ToDevice(x, dtype), ToDevice(w, dtype), with_bias ? &db : nullptr, out);
          ASSERT_TRUE(st.ok()) << st;
          EXPECT_TRUE(NormwiseNear(ToHostFloat(out), ToDoubles(ref), RelTol(dtype)));
        }
      }
    }
  }
}

// The lm_head's case: half-precision inputs writing float32 logits, closer
// to the float32 reference than a half-precision out can be.
TEST_F(CudaOpsTest, LinearWritesFloat32FromHalfInputs) {
  const uint32_t seed = TestSeed(106);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (DType dtype : {DType::kBFloat16, DType::kFloat16}) {
    for (int64_t n : {1, 5, 64}) {
      const int64_t k = 4096, m = 4000;  // an lm_head slice: hidden 4096, a vocab shard
      SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " n ", n));
      Tensor x = RoundTo(RandomFloats(rng, {n, k}), dtype);
      Tensor w = RoundTo(RandomFloats(rng, {m, k}), dtype);
      Tensor ref = Tensor::Empty(DType::kFloat32, {n, m});
      ASSERT_TRUE(ops::Linear(x, w, nullptr, ref).ok());
      Tensor out = Tensor::Empty(DType::kFloat32, {n, m}, Device::kCuda);
      const absl::Status st = ops::Linear(ToDevice(x, dtype), ToDevice(w, dtype), nullptr, out);
      ASSERT_TRUE(st.ok()) << st;
      // Exact inputs, float32 accumulation, one float32 rounding: float32-level agreement.
      EXPECT_TRUE(NormwiseNear(ToHostFloat(out), ToDoubles(ref), 1e-5));
    }
  }
}

TEST_F(CudaOpsTest, LinearWithEmptyInnerDimensionIsTheBias) {
  Tensor x = Tensor::Empty(DType::kFloat32, {3, 0}, Device::kCuda);
  Tensor w = Tensor::Empty(DType::kFloat32, {4, 0}, Device::kCuda);
  Tensor b = Tensor::FromFloats({1, 2, 3, 4}, {4});
  Tensor out = Tensor::Empty(DType::kFloat32, {3, 4}, Device::kCuda);
  Tensor db = Upload(b);
  ASSERT_TRUE(ops::Linear(x, w, &db, out).ok());
  Tensor got = ToHostFloat(out);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(ExactlyEqual(got.data_as<float>() + i * 4, b.data_as<float>(), 4));
  }
}

// --- SiluAndMul -----------------------------------------------------------------

TEST_F(CudaOpsTest, SiluAndMulMatchesCpu) {
  const uint32_t seed = TestSeed(106);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (DType dtype : FloatDTypes()) {
    for (int64_t inter : {1, 8, 999, 1000, 14336}) {
      for (int64_t n : {1, 33}) {
        SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " n ", n, " I ", inter));
        Tensor x = RoundTo(RandomFloats(rng, {n, 2 * inter}, -6.f, 6.f), dtype);
        Tensor ref = Tensor::Empty(DType::kFloat32, {n, inter});
        ASSERT_TRUE(ops::SiluAndMul(x, ref).ok());
        Tensor out = Tensor::Empty(dtype, {n, inter}, Device::kCuda);
        ASSERT_TRUE(ops::SiluAndMul(ToDevice(x, dtype), out).ok());
        EXPECT_TRUE(ElementwiseClose(out, ref, dtype));
      }
    }
  }
}

// --- Rotary and KV store --------------------------------------------------------

struct RopeCase {
  int64_t n;
  int nh, nkv, hd;
};

TEST_F(CudaOpsTest, ApplyRopeMatchesCpu) {
  const uint32_t seed = TestSeed(107);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  ops::RopeScaling scaling;
  scaling.type = ops::RopeScaling::Type::kLlama3;
  scaling.factor = 8.0;
  for (DType dtype : FloatDTypes()) {
    for (RopeCase c : {RopeCase{1, 1, 1, 2}, RopeCase{5, 4, 2, 10}, RopeCase{37, 32, 8, 128},
                       RopeCase{3, 8, 1, 64}}) {
      SCOPED_TRACE(
          absl::StrCat(DTypeTrace(dtype), " n ", c.n, " nh ", c.nh, " nkv ", c.nkv, " hd ", c.hd));
      const int64_t max_pos = 5000;
      Tensor cos_sin = ops::BuildRopeCache(c.hd, max_pos, 500000.0, scaling);
      std::uniform_int_distribution<int32_t> pos_dist(0, max_pos - 1);
      std::vector<int32_t> pos(c.n);
      for (auto& p : pos) p = pos_dist(rng);
      Tensor positions = Tensor::FromInts(pos, {c.n});
      Tensor q = RoundTo(RandomFloats(rng, {c.n, c.nh * c.hd}), dtype);
      Tensor k = RoundTo(RandomFloats(rng, {c.n, c.nkv * c.hd}), dtype);
      Tensor dq = ToDevice(q, dtype), dk = ToDevice(k, dtype);
      ASSERT_TRUE(ops::ApplyRope(positions, q, k, c.hd, cos_sin).ok());
      ASSERT_TRUE(ops::ApplyRope(Upload(positions), dq, dk, c.hd, Upload(cos_sin)).ok());
      EXPECT_TRUE(ElementwiseClose(dq, q, dtype)) << "q";
      EXPECT_TRUE(ElementwiseClose(dk, k, dtype)) << "k";
    }
  }
}

TEST_F(CudaOpsTest, ApplyRopeLeavesRowsWithBadPositionsAlone) {
  Tensor cos_sin = Upload(ops::BuildRopeCache(8, 16, 10000.0, {}));
  std::mt19937 rng(3);
  Tensor q = RandomFloats(rng, {2, 8});
  Tensor k = Clone(q);
  Tensor dq = ToDevice(q, DType::kFloat32), dk = ToDevice(k, DType::kFloat32);
  Tensor positions = Upload(Tensor::FromInts({-3, 16}, {2}));
  ASSERT_TRUE(ops::ApplyRope(positions, dq, dk, 8, cos_sin).ok());
  EXPECT_TRUE(Exact(dq, q));
  EXPECT_TRUE(Exact(dk, k));
  // cos_sin must stay float32 on the device.
  Tensor bf = ToDevice(ops::BuildRopeCache(8, 16, 10000.0, {}), DType::kBFloat16);
  EXPECT_EQ(ops::ApplyRope(positions, dq, dk, 8, bf).code(), absl::StatusCode::kInvalidArgument);
}

// A cache [num_blocks, block_size, nkv, hd] of random values, and slots for n
// tokens: distinct, shuffled, with some -1 (padding).
struct KvCase {
  int64_t n, num_blocks, block_size;
  int nkv, hd;
};

std::vector<int64_t> RandomSlots(std::mt19937& rng, int64_t n, int64_t num_slots) {
  std::vector<int64_t> all(num_slots);
  for (int64_t i = 0; i < num_slots; ++i) all[i] = i;
  std::shuffle(all.begin(), all.end(), rng);
  std::vector<int64_t> slots(all.begin(), all.begin() + n);
  for (int64_t i = 0; i < n; i += 5) slots[i] = -1;
  return slots;
}

Tensor SlotTensor(const std::vector<int64_t>& slots) {
  Tensor t = Tensor::Empty(DType::kInt64, {static_cast<int64_t>(slots.size())});
  std::copy(slots.begin(), slots.end(), t.data_as<int64_t>());
  return t;
}

TEST_F(CudaOpsTest, KvStoreMatchesCpu) {
  const uint32_t seed = TestSeed(108);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (DType dtype : FloatDTypes()) {
    for (KvCase c : {KvCase{1, 2, 16, 1, 8}, KvCase{21, 6, 16, 2, 12}, KvCase{100, 13, 16, 8, 128},
                     KvCase{7, 3, 5, 3, 64}}) {
      SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " n ", c.n, " blocks ", c.num_blocks, "x",
                                c.block_size, " nkv ", c.nkv, " hd ", c.hd));
      const int64_t row = c.nkv * c.hd;
      Tensor k = RoundTo(RandomFloats(rng, {c.n, row}), dtype);
      Tensor v = RoundTo(RandomFloats(rng, {c.n, row}), dtype);
      const std::vector<int64_t> cache_shape = {c.num_blocks, c.block_size, c.nkv, c.hd};
      Tensor kc = RoundTo(RandomFloats(rng, cache_shape), dtype);
      Tensor vc = RoundTo(RandomFloats(rng, cache_shape), dtype);
      Tensor slots = SlotTensor(RandomSlots(rng, c.n, c.num_blocks * c.block_size));
      Tensor dkc = ToDevice(kc, dtype), dvc = ToDevice(vc, dtype);
      ASSERT_TRUE(ops::KvStore(k, v, slots, kc, vc).ok());
      ASSERT_TRUE(
          ops::KvStore(ToDevice(k, dtype), ToDevice(v, dtype), Upload(slots), dkc, dvc).ok());
      EXPECT_TRUE(Exact(dkc, kc)) << "k_cache";
      EXPECT_TRUE(Exact(dvc, vc)) << "v_cache";
    }
  }
}

TEST_F(CudaOpsTest, RopeAndKvStoreMatchesCpu) {
  const uint32_t seed = TestSeed(109);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (DType dtype : FloatDTypes()) {
    for (KvCase c : {KvCase{1, 2, 16, 1, 8}, KvCase{29, 9, 16, 2, 64}, KvCase{64, 8, 16, 8, 128},
                     KvCase{5, 4, 3, 1, 10}}) {
      const int nh = c.nkv * 4;
      SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " n ", c.n, " blocks ", c.num_blocks, "x",
                                c.block_size, " nh ", nh, " nkv ", c.nkv, " hd ", c.hd));
      const int64_t row = c.nkv * c.hd, max_pos = 2048;
      Tensor cos_sin = ops::BuildRopeCache(c.hd, max_pos, 10000.0, {});
      std::uniform_int_distribution<int32_t> pos_dist(0, max_pos - 1);
      std::vector<int32_t> pos(c.n);
      for (auto& p : pos) p = pos_dist(rng);
      Tensor positions = Tensor::FromInts(pos, {c.n});
      Tensor q = RoundTo(RandomFloats(rng, {c.n, nh * c.hd}), dtype);
      Tensor k = RoundTo(RandomFloats(rng, {c.n, row}), dtype);
      Tensor v = RoundTo(RandomFloats(rng, {c.n, row}), dtype);
      const std::vector<int64_t> cache_shape = {c.num_blocks, c.block_size, c.nkv, c.hd};
      Tensor kc = RoundTo(RandomFloats(rng, cache_shape), dtype);
      Tensor vc = RoundTo(RandomFloats(rng, cache_shape), dtype);
      Tensor slots = SlotTensor(RandomSlots(rng, c.n, c.num_blocks * c.block_size));
      Tensor dq = ToDevice(q, dtype), dk = ToDevice(k, dtype);
      Tensor dkc = ToDevice(kc, dtype), dvc = ToDevice(vc, dtype);
      ASSERT_TRUE(ops::RopeAndKvStore(positions, q, k, v, c.hd, cos_sin, slots, kc, vc).ok());
      ASSERT_TRUE(ops::RopeAndKvStore(Upload(positions), dq, dk, ToDevice(v, dtype), c.hd,
                                      Upload(cos_sin), Upload(slots), dkc, dvc)
                      .ok());
      EXPECT_TRUE(ElementwiseClose(dq, q, dtype)) << "q";
      EXPECT_TRUE(ElementwiseClose(dk, k, dtype)) << "k";
      EXPECT_TRUE(ElementwiseClose(dkc, kc, dtype)) << "k_cache";
      EXPECT_TRUE(Exact(dvc, vc)) << "v_cache";
    }
  }
}

}  // namespace
}  // namespace tessera
