// Rotary embeddings: the inverse frequencies (default, "linear", "llama3"),
// the cos/sin cache and ApplyRope against a float64 reference.
//
// Error bound for ApplyRope: each output is x1*cos - x2*sin with the cache
// entries rounded to float32 once; for |x| <= 1 the error is a few u (6e-8)
// absolute, so |err| <= 1e-5 |ref| + 1e-6 leaves a wide margin while any
// wrong pairing, sign or position fails by O(1).
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera {
namespace {

using testing::ElementwiseNear;
using ::testing::HasSubstr;
using testing::RandomFloats;
using testing::SeedTrace;
using testing::TestSeed;

ops::RopeScaling Llama31Scaling() {
  ops::RopeScaling s;
  s.type = ops::RopeScaling::Type::kLlama3;
  s.factor = 8.0;
  s.low_freq_factor = 1.0;
  s.high_freq_factor = 4.0;
  s.original_max_position_embeddings = 8192;
  return s;
}

TEST(RopeInvFreqTest, DefaultIsThetaPower) {
  const std::vector<double> inv = ops::cpu::RopeInvFreq(8, 10000.0, ops::RopeScaling{});
  ASSERT_EQ(inv.size(), 4u);
  EXPECT_DOUBLE_EQ(inv[0], 1.0);
  EXPECT_DOUBLE_EQ(inv[1], 0.1);    // 10000^(-2/8)
  EXPECT_DOUBLE_EQ(inv[2], 0.01);   // 10000^(-4/8)
  EXPECT_DOUBLE_EQ(inv[3], 0.001);  // 10000^(-6/8)
}

TEST(RopeInvFreqTest, LinearDividesByFactor) {
  ops::RopeScaling s;
  s.type = ops::RopeScaling::Type::kLinear;
  s.factor = 4.0;
  const std::vector<double> inv = ops::cpu::RopeInvFreq(8, 10000.0, s);
  EXPECT_DOUBLE_EQ(inv[0], 0.25);
  EXPECT_DOUBLE_EQ(inv[1], 0.025);
  EXPECT_DOUBLE_EQ(inv[3], 0.00025);
}

// Llama-3.1-8B: theta 500000, head_dim 128, factor 8, low 1, high 4,
// original context 8192. So high_freq_wavelen = 8192 / 4 = 2048 and
// low_freq_wavelen = 8192 / 1 = 8192. Worked by hand for a few j
// (inv = 500000^(-2j/128), wavelen = 2 pi / inv):
//   j = 0:  inv = 1,             wavelen = 6.283    < 2048: kept, 1
//   j = 28: inv = 3.2114460e-3,  wavelen = 1956.50  < 2048: kept
//   j = 29: inv = 2.6160993e-3,  wavelen = 2401.74, smooth = (8192/2401.74 - 1)/3
//           = 0.803621, inv' = (1 - s) inv / 8 + s inv = 2.1665708e-3
//   j = 30: inv = 2.1311195e-3,  wavelen = 2948.30, s = 0.592849, inv' = 1.3718936e-3
//   j = 32: inv = 1.4142136e-3 (= 500000^-0.5), wavelen = 4442.88, s = 0.281283,
//           inv' = 5.2484616e-4
//   j = 34: inv = 9.3847387e-4,  wavelen = 6695.11, s = 0.074527, inv' = 1.7850781e-4
//   j = 35: inv = 7.6449699e-4,  wavelen = 8218.72  > 8192: inv / 8 = 9.5562124e-5
//   j = 63: inv = 2.4551408e-6,  low frequency: inv / 8 = 3.0689260e-7
TEST(RopeInvFreqTest, Llama3ScalingMatchesHandComputedValues) {
  const std::vector<double> inv = ops::cpu::RopeInvFreq(128, 500000.0, Llama31Scaling());
  ASSERT_EQ(inv.size(), 64u);
  const std::vector<std::pair<int, double>> want = {
      {0, 1.0},           {28, 3.2114460e-3}, {29, 2.1665708e-3}, {30, 1.3718936e-3},
      {32, 5.2484616e-4}, {34, 1.7850781e-4}, {35, 9.5562124e-5}, {63, 3.0689260e-7}};
  for (const auto& [j, value] : want) {
    EXPECT_NEAR(inv[j], value, value * 1e-7) << "j = " << j;  // 8 significant digits above
  }
  // Every frequency is within [unscaled / factor, unscaled] and non-increasing.
  const std::vector<double> base = ops::cpu::RopeInvFreq(128, 500000.0, ops::RopeScaling{});
  for (int j = 0; j < 64; ++j) {
    EXPECT_LE(inv[j], base[j]);
    EXPECT_GE(inv[j], base[j] / 8.0 * (1 - 1e-15));
    if (j > 0) {
      EXPECT_LT(inv[j], inv[j - 1]);
    }
  }
}

TEST(RopeCacheTest, RowsHoldCosThenSin) {
  const int hd = 128;
  const int64_t max_pos = 2048;
  Tensor cache = ops::BuildRopeCache(hd, max_pos, 500000.0, Llama31Scaling());
  ASSERT_TRUE(cache.defined());
  EXPECT_EQ(cache.dtype(), DType::kFloat32);
  EXPECT_EQ(cache.ShapeString(), "[2048, 128]");
  const float* c = cache.data_as<const float>();
  // Row 0: cos 0 = 1, sin 0 = 0.
  for (int j = 0; j < hd / 2; ++j) {
    EXPECT_EQ(c[j], 1.f);
    EXPECT_EQ(c[hd / 2 + j], 0.f);
  }
  // Row 1000 at the hand-computed frequencies above.
  const std::vector<std::pair<int, double>> inv = {
      {0, 1.0}, {30, 1.3718936e-3}, {35, 9.5562124e-5}, {63, 3.0689260e-7}};
  for (const auto& [j, f] : inv) {
    EXPECT_NEAR(c[1000 * hd + j], std::cos(1000 * f), 2e-6) << "j = " << j;
    EXPECT_NEAR(c[1000 * hd + hd / 2 + j], std::sin(1000 * f), 2e-6) << "j = " << j;
  }
}

TEST(RopeCacheTest, LinearScalingStretchesPositions) {
  ops::RopeScaling s;
  s.type = ops::RopeScaling::Type::kLinear;
  s.factor = 4.0;
  Tensor scaled = ops::BuildRopeCache(16, 64, 10000.0, s);
  Tensor plain = ops::BuildRopeCache(16, 64, 10000.0, ops::RopeScaling{});
  // Position p with factor 4 rotates like position p / 4 without it.
  for (int64_t p = 0; p < 64; p += 4) {
    for (int j = 0; j < 16; ++j) {
      ASSERT_EQ(scaled.data_as<float>()[p * 16 + j], plain.data_as<float>()[p / 4 * 16 + j])
          << "p = " << p << " j = " << j;
    }
  }
}

TEST(RopeCacheTest, InvalidArgumentsGiveAnUndefinedTensor) {
  EXPECT_FALSE(ops::BuildRopeCache(7, 16, 10000.0, ops::RopeScaling{}).defined());
  EXPECT_FALSE(ops::BuildRopeCache(0, 16, 10000.0, ops::RopeScaling{}).defined());
  EXPECT_FALSE(ops::BuildRopeCache(8, -1, 10000.0, ops::RopeScaling{}).defined());
}

// Rotate-half reference in double from independently computed frequencies.
std::vector<double> RopeRef(const Tensor& x, const std::vector<int32_t>& pos, int hd,
                            const std::vector<double>& inv) {
  const int64_t n = x.dim(0), heads = x.dim(1) / hd;
  const int half = hd / 2;
  const float* xp = x.data_as<const float>();
  std::vector<double> out(x.numel());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t base = i * x.dim(1) + h * hd;
      for (int j = 0; j < half; ++j) {
        const double a = pos[i] * inv[j];
        const double x1 = xp[base + j], x2 = xp[base + half + j];
        out[base + j] = x1 * std::cos(a) - x2 * std::sin(a);
        out[base + half + j] = x2 * std::cos(a) + x1 * std::sin(a);
      }
    }
  }
  return out;
}

TEST(ApplyRopeTest, MatchesFloat64Reference) {
  const uint32_t seed = TestSeed(21);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  struct Case {
    int hd, nh, nkv, n;
    double theta;
    bool llama3;
  };
  const std::vector<Case> cases = {{8, 1, 1, 1, 10000.0, false},
                                   {16, 4, 2, 7, 10000.0, false},
                                   {64, 6, 2, 13, 1e6, false},
                                   {128, 8, 2, 5, 500000.0, true},
                                   {128, 32, 8, 300, 500000.0, true}};
  const int64_t max_pos = 16384;
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("hd=", c.hd, " nh=", c.nh, " nkv=", c.nkv, " n=", c.n));
    const ops::RopeScaling scaling = c.llama3 ? Llama31Scaling() : ops::RopeScaling{};
    Tensor cache = ops::BuildRopeCache(c.hd, max_pos, c.theta, scaling);
    std::vector<double> inv(c.hd / 2);
    if (c.llama3) {
      inv = ops::cpu::RopeInvFreq(c.hd, c.theta, scaling);  // checked by hand above
    } else {
      for (int j = 0; j < c.hd / 2; ++j) inv[j] = std::pow(c.theta, -2.0 * j / c.hd);
    }
    std::uniform_int_distribution<int32_t> pos_dist(0, max_pos - 1);
    std::vector<int32_t> pos(c.n);
    for (auto& p : pos) p = pos_dist(rng);
    pos[0] = c.n > 1 ? 0 : max_pos - 1;
    if (c.n > 2) pos[1] = max_pos - 1;
    Tensor q = RandomFloats(rng, {c.n, int64_t{c.nh} * c.hd});
    Tensor k = RandomFloats(rng, {c.n, int64_t{c.nkv} * c.hd});
    const std::vector<double> q_ref = RopeRef(q, pos, c.hd, inv);
    const std::vector<double> k_ref = RopeRef(k, pos, c.hd, inv);
    ASSERT_TRUE(ops::ApplyRope(Tensor::FromInts(pos, {c.n}), q, k, c.hd, cache).ok());
    EXPECT_TRUE(ElementwiseNear(q, q_ref, 1e-5, 1e-6));
    EXPECT_TRUE(ElementwiseNear(k, k_ref, 1e-5, 1e-6));
  }
}

TEST(ApplyRopeTest, RejectsPositionsOutsideTheCache) {
  Tensor cache = ops::BuildRopeCache(8, 16, 10000.0, ops::RopeScaling{});
  Tensor q = Tensor::Zeros(DType::kFloat32, {3, 16});
  Tensor k = Tensor::Zeros(DType::kFloat32, {3, 8});
  absl::Status s = ops::ApplyRope(Tensor::FromInts({0, 5, 16}, {3}), q, k, 8, cache);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("ApplyRope: positions[2] = 16"));
  s = ops::ApplyRope(Tensor::FromInts({0, -1, 2}, {3}), q, k, 8, cache);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = ops::ApplyRope(Tensor::FromInts({0, 1, 2}, {3}), q, k, 6, cache);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("ApplyRope"));
  Tensor k_bad = Tensor::Zeros(DType::kFloat32, {3, 12});
  s = ops::ApplyRope(Tensor::FromInts({0, 1, 2}, {3}), q, k_bad, 8, cache);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("multiple of head_dim"));
}

}  // namespace
}  // namespace tessera
