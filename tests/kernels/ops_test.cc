// CPU ops of kernels/ops.h against float64 references computed here with
// plain loops, on seeded random inputs (the validation every op does is in
// ops_validation_test.cc, part of the same ops_test binary).
//
// Error bounds (float32 unit roundoff u = 6e-8):
//  - copies (Embedding, GatherRows, KvStore): bit-exact.
//  - elementwise / norm ops (RmsNorm, FusedAddRmsNorm, SiluAndMul): each output
//    is a handful of roundings plus a float32 sum of h squares; the relative
//    error stays below ~(h/lanes + 10) u ~ 1e-6 for h <= 4096, so
//    |err| <= 1e-5 |ref| + 1e-6 (the absolute term covers outputs near zero)
//    leaves a 10x margin without hiding a wrong formula.
//  - GEMM (Linear): a dot product of length k has error ~sqrt(k) u |x||w|
//    typically (k u worst case) while the outputs are ~sqrt(k) |x||w| in size,
//    so max |err| <= 1e-4 * max |ref| holds with a wide margin for k <= 4096
//    and still fails for any indexing or transposition mistake.
#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/tensor.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera {
namespace {

using testing::Clone;
using testing::ElementwiseNear;
using testing::ExactlyEqual;
using ::testing::HasSubstr;
using testing::NormwiseNear;
using testing::RandomFloats;
using testing::SeedTrace;
using testing::TestSeed;

constexpr double kElemRtol = 1e-5;
constexpr double kElemAtol = 1e-6;
constexpr double kGemmTol = 1e-4;

// --- Embedding --------------------------------------------------------------

TEST(EmbeddingTest, LooksUpTheShardAndZeroesOtherIds) {
  const uint32_t seed = TestSeed(1);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const int64_t rows = 37, h = 19, vocab_start = 50;
  Tensor table = RandomFloats(rng, {rows, h});
  std::uniform_int_distribution<int32_t> id_dist(-5, 120);  // in and outside the shard
  std::vector<int32_t> ids(41);
  for (auto& id : ids) id = id_dist(rng);
  ids[0] = vocab_start;             // first row of the shard
  ids[1] = vocab_start + rows - 1;  // last row
  ids[2] = vocab_start + rows;      // just past it
  ids[3] = vocab_start - 1;         // just before it
  Tensor ids_t = Tensor::FromInts(ids, {static_cast<int64_t>(ids.size())});
  Tensor out = Tensor::Empty(DType::kFloat32, {ids_t.dim(0), h});
  ASSERT_TRUE(ops::Embedding(ids_t, table, vocab_start, out).ok());
  std::vector<float> zeros(h, 0.f);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t local = ids[i] - vocab_start;
    const float* want =
        (local >= 0 && local < rows) ? table.data_as<float>() + local * h : zeros.data();
    ASSERT_TRUE(ExactlyEqual(out.data_as<float>() + i * h, want, h))
        << "row " << i << " id " << ids[i];
  }
}

TEST(EmbeddingTest, ManyTokensUseThreads) {
  // Large enough to take the OpenMP path.
  const uint32_t seed = TestSeed(2);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const int64_t rows = 500, h = 256, n = 300;
  Tensor table = RandomFloats(rng, {rows, h});
  std::uniform_int_distribution<int32_t> id_dist(0, rows - 1);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = id_dist(rng);
  Tensor out = Tensor::Empty(DType::kFloat32, {n, h});
  ASSERT_TRUE(ops::Embedding(Tensor::FromInts(ids, {n}), table, 0, out).ok());
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(ExactlyEqual(out.data_as<float>() + i * h, table.data_as<float>() + ids[i] * h, h));
  }
}

// --- RmsNorm / FusedAddRmsNorm ---------------------------------------------

std::vector<double> RmsNormRef(const std::vector<double>& x, const Tensor& w, int64_t rows,
                               int64_t h, double eps) {
  std::vector<double> out(x.size());
  const float* wp = w.data_as<const float>();
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < h; ++j) ss += x[r * h + j] * x[r * h + j];
    const double inv = 1.0 / std::sqrt(ss / h + eps);
    for (int64_t j = 0; j < h; ++j) out[r * h + j] = x[r * h + j] * inv * wp[j];
  }
  return out;
}

TEST(RmsNormTest, MatchesFloat64Reference) {
  const uint32_t seed = TestSeed(3);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1, 8}, {3, 17}, {7, 64}, {33, 128}, {5, 1000}, {2, 4096}, {64, 512}};
  for (const auto& [rows, h] : shapes) {
    SCOPED_TRACE(testing::ShapeTrace(rows, h));
    Tensor x = RandomFloats(rng, {rows, h}, -3.f, 3.f);
    Tensor w = RandomFloats(rng, {h}, 0.5f, 1.5f);
    const float eps = 1e-5f;
    const std::vector<double> ref = RmsNormRef(testing::ToDoubles(x), w, rows, h, eps);
    Tensor out = Tensor::Empty(DType::kFloat32, {rows, h});
    ASSERT_TRUE(ops::RmsNorm(x, w, eps, out).ok());
    EXPECT_TRUE(ElementwiseNear(out, ref, kElemRtol, kElemAtol));
    // In place (out = x), as ops.h allows.
    ASSERT_TRUE(ops::RmsNorm(x, w, eps, x).ok());
    EXPECT_TRUE(ElementwiseNear(x, ref, kElemRtol, kElemAtol));
  }
}

TEST(RmsNormTest, PerHeadNormOnReshapedView) {
  // q/k norm: [n, heads*hd] viewed as [n*heads, hd].
  const uint32_t seed = TestSeed(4);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const int64_t n = 5, heads = 3, hd = 16;
  Tensor q = RandomFloats(rng, {n, heads * hd});
  Tensor w = RandomFloats(rng, {hd});
  const std::vector<double> ref = RmsNormRef(testing::ToDoubles(q), w, n * heads, hd, 1e-6);
  Tensor view = q.Reshape({n * heads, hd});
  ASSERT_TRUE(ops::RmsNorm(view, w, 1e-6f, view).ok());
  EXPECT_TRUE(ElementwiseNear(q, ref, kElemRtol, kElemAtol));
}

TEST(FusedAddRmsNormTest, MatchesFloat64Reference) {
  const uint32_t seed = TestSeed(5);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 8}, {3, 17}, {9, 256}, {70, 515}};
  for (const auto& [rows, h] : shapes) {
    SCOPED_TRACE(testing::ShapeTrace(rows, h));
    Tensor x = RandomFloats(rng, {rows, h});
    Tensor residual = RandomFloats(rng, {rows, h}, -2.f, 2.f);
    Tensor w = RandomFloats(rng, {h}, 0.5f, 1.5f);
    std::vector<double> sum(rows * h);
    for (int64_t i = 0; i < rows * h; ++i) {
      // The reference sum is the float32 sum (what the residual stream holds).
      sum[i] = static_cast<double>(x.data_as<float>()[i] + residual.data_as<float>()[i]);
    }
    const std::vector<double> ref = RmsNormRef(sum, w, rows, h, 1e-5);
    ASSERT_TRUE(ops::FusedAddRmsNorm(x, residual, w, 1e-5f).ok());
    EXPECT_TRUE(ElementwiseNear(residual, sum, 0, 0)) << "residual must hold x + residual";
    EXPECT_TRUE(ElementwiseNear(x, ref, kElemRtol, kElemAtol));
  }
}

// --- Linear -------------------------------------------------------------------

std::vector<double> LinearRef(const Tensor& x, const Tensor& w, const Tensor* bias) {
  const int64_t n = x.dim(0), k = x.dim(1), m = w.dim(0);
  const float* xp = x.data_as<const float>();
  const float* wp = w.data_as<const float>();
  std::vector<double> out(n * m);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      double acc = bias != nullptr ? bias->data_as<const float>()[j] : 0.0;
      for (int64_t t = 0; t < k; ++t) acc += static_cast<double>(xp[i * k + t]) * wp[j * k + t];
      out[i * m + j] = acc;
    }
  }
  return out;
}

TEST(LinearTest, MatchesFloat64Reference) {
  const uint32_t seed = TestSeed(6);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  struct Shape {
    int64_t n, k, m;
  };
  // n = 1 is the decode (matrix-vector) path; odd sizes are not multiples of
  // any SIMD width; the largest runs on several OpenBLAS threads.
  const std::vector<Shape> shapes = {{1, 8, 3},   {1, 1000, 257}, {3, 17, 5},
                                     {7, 64, 96}, {37, 300, 129}, {128, 512, 384}};
  for (const Shape& s : shapes) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(absl::StrCat("n=", s.n, " k=", s.k, " m=", s.m, " bias=", with_bias));
      Tensor x = RandomFloats(rng, {s.n, s.k});
      Tensor w = RandomFloats(rng, {s.m, s.k});
      Tensor b = RandomFloats(rng, {s.m});
      const Tensor* bias = with_bias ? &b : nullptr;
      Tensor out = Tensor::Empty(DType::kFloat32, {s.n, s.m});
      // Uninitialised output memory may hold NaNs: they must not leak through.
      std::fill_n(out.data_as<float>(), out.numel(), std::numeric_limits<float>::quiet_NaN());
      ASSERT_TRUE(ops::Linear(x, w, bias, out).ok());
      EXPECT_TRUE(NormwiseNear(out, LinearRef(x, w, bias), kGemmTol));
    }
  }
}

TEST(LinearTest, EmptyInnerDimensionGivesBias) {
  Tensor x = Tensor::Empty(DType::kFloat32, {2, 0});
  Tensor w = Tensor::Empty(DType::kFloat32, {3, 0});
  Tensor b = Tensor::FromFloats({1.f, 2.f, 3.f}, {3});
  Tensor out = Tensor::Empty(DType::kFloat32, {2, 3});
  ASSERT_TRUE(ops::Linear(x, w, &b, out).ok());
  EXPECT_TRUE(ElementwiseNear(out, {1, 2, 3, 1, 2, 3}, 0, 0));
}

// --- SiluAndMul -------------------------------------------------------------

TEST(SiluAndMulTest, MatchesFloat64Reference) {
  const uint32_t seed = TestSeed(7);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 8}, {3, 17}, {40, 1000}};
  for (const auto& [n, inter] : shapes) {
    SCOPED_TRACE(testing::ShapeTrace(n, inter));
    Tensor x = RandomFloats(rng, {n, 2 * inter}, -8.f, 8.f);
    const float* xp = x.data_as<const float>();
    std::vector<double> ref(n * inter);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < inter; ++j) {
        const double g = xp[i * 2 * inter + j], u = xp[i * 2 * inter + inter + j];
        ref[i * inter + j] = g / (1.0 + std::exp(-g)) * u;
      }
    }
    Tensor out = Tensor::Empty(DType::kFloat32, {n, inter});
    ASSERT_TRUE(ops::SiluAndMul(x, out).ok());
    EXPECT_TRUE(ElementwiseNear(out, ref, kElemRtol, kElemAtol));
  }
}

// --- GatherRows ---------------------------------------------------------------

TEST(GatherRowsTest, CopiesTheSelectedRows) {
  const uint32_t seed = TestSeed(8);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const int64_t n = 23, h = 13;
  Tensor x = RandomFloats(rng, {n, h});
  const std::vector<int32_t> idx = {22, 0, 5, 5, 11, 21};
  Tensor out = Tensor::Empty(DType::kFloat32, {6, h});
  ASSERT_TRUE(ops::GatherRows(x, Tensor::FromInts(idx, {6}), out).ok());
  for (size_t j = 0; j < idx.size(); ++j) {
    ASSERT_TRUE(ExactlyEqual(out.data_as<float>() + j * h, x.data_as<float>() + idx[j] * h, h));
  }
  Tensor bad = Tensor::FromInts({3, 23}, {2});
  Tensor out2 = Tensor::Empty(DType::kFloat32, {2, h});
  const absl::Status s = ops::GatherRows(x, bad, out2);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("GatherRows"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("indices[1] = 23"));
}

// --- KvStore ------------------------------------------------------------------

TEST(KvStoreTest, WritesSlotsAndSkipsPadding) {
  const uint32_t seed = TestSeed(9);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const int64_t blocks = 6, bs = 4, nkv = 2, hd = 8, row = nkv * hd;
  Tensor k_cache = RandomFloats(rng, {blocks, bs, nkv, hd});
  Tensor v_cache = RandomFloats(rng, {blocks, bs, nkv, hd});
  const Tensor k_before = Clone(k_cache), v_before = Clone(v_cache);
  const std::vector<int64_t> slots = {9, -1, 0, 23, 14, -1, 5};
  const int64_t n = static_cast<int64_t>(slots.size());
  Tensor k = RandomFloats(rng, {n, row});
  Tensor v = RandomFloats(rng, {n, row});
  Tensor slot_t = Tensor::Empty(DType::kInt64, {n});
  std::copy(slots.begin(), slots.end(), slot_t.data_as<int64_t>());
  ASSERT_TRUE(ops::KvStore(k, v, slot_t, k_cache, v_cache).ok());
  std::vector<int64_t> writer(blocks * bs, -1);  // which token wrote each slot
  for (int64_t i = 0; i < n; ++i) {
    if (slots[i] >= 0) writer[slots[i]] = i;
  }
  for (int64_t s = 0; s < blocks * bs; ++s) {
    const float* want_k =
        writer[s] >= 0 ? k.data_as<float>() + writer[s] * row : k_before.data_as<float>() + s * row;
    const float* want_v =
        writer[s] >= 0 ? v.data_as<float>() + writer[s] * row : v_before.data_as<float>() + s * row;
    ASSERT_TRUE(ExactlyEqual(k_cache.data_as<float>() + s * row, want_k, row)) << "slot " << s;
    ASSERT_TRUE(ExactlyEqual(v_cache.data_as<float>() + s * row, want_v, row)) << "slot " << s;
  }
  // A slot past the cache is rejected before anything is written.
  slot_t.data_as<int64_t>()[0] = blocks * bs;
  const absl::Status s = ops::KvStore(k, v, slot_t, k_cache, v_cache);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("KvStore: slot_mapping[0] = 24"));
}

// --- threads --------------------------------------------------------------

TEST(ThreadsTest, ResultsDoNotDependOnTheThreadCount) {
  const uint32_t seed = TestSeed(10);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const int64_t rows = 96, h = 1024;
  Tensor x = RandomFloats(rng, {rows, h});
  Tensor w = RandomFloats(rng, {h});
  Tensor one = Tensor::Empty(DType::kFloat32, {rows, h});
  Tensor many = Tensor::Empty(DType::kFloat32, {rows, h});
  ops::SetCpuThreads(1);
  ASSERT_TRUE(ops::RmsNorm(x, w, 1e-5f, one).ok());
  ops::SetCpuThreads(4);
  ASSERT_TRUE(ops::RmsNorm(x, w, 1e-5f, many).ok());
  ops::SetCpuThreads(0);
  EXPECT_TRUE(ExactlyEqual(many.data_as<float>(), one.data_as<float>(), rows * h));
}

}  // namespace
}  // namespace tessera
