// Tests of kernels/tensor.h: dtype helpers, float16 / bfloat16 conversions
// (known values, round-to-nearest-even, exhaustive round trips) and the Tensor
// handle (allocation, views, reshape, slice).
#include "kernels/tensor.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

bool HalfIsNan(uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0; }
bool BF16IsNan(uint16_t b) { return (b & 0x7F80) == 0x7F80 && (b & 0x007F) != 0; }

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4u);
  EXPECT_EQ(DTypeSize(DType::kFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kBFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kInt32), 4u);
  EXPECT_EQ(DTypeSize(DType::kInt64), 8u);
  EXPECT_EQ(DTypeName(DType::kFloat32), "float32");
  EXPECT_EQ(DTypeName(DType::kFloat16), "float16");
  EXPECT_EQ(DTypeName(DType::kBFloat16), "bfloat16");
  EXPECT_EQ(DTypeName(DType::kInt32), "int32");
  EXPECT_EQ(DTypeName(DType::kInt64), "int64");
}

TEST(DTypeTest, ParseAcceptsTheFlagNames) {
  const std::vector<std::pair<const char*, DType>> cases = {
      {"float32", DType::kFloat32}, {"fp32", DType::kFloat32},    {"bfloat16", DType::kBFloat16},
      {"bf16", DType::kBFloat16},   {"float16", DType::kFloat16}, {"fp16", DType::kFloat16},
      {"half", DType::kFloat16}};
  for (const auto& [name, want] : cases) {
    auto got = ParseDType(name);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    EXPECT_EQ(*got, want) << name;
  }
  auto bad = ParseDType("int8");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("int8"), absl::string_view::npos);
}

TEST(HalfTest, KnownValues) {
  const std::vector<std::pair<float, uint16_t>> exact = {
      {0.f, 0x0000},
      {-0.f, 0x8000},
      {1.f, 0x3C00},
      {-2.5f, 0xC100},
      {0.5f, 0x3800},
      {65504.f, 0x7BFF},                  // largest finite half
      {std::ldexp(1.f, -14), 0x0400},     // smallest normal
      {std::ldexp(1.f, -24), 0x0001},     // smallest subnormal
      {std::ldexp(1023.f, -24), 0x03FF},  // largest subnormal
      {-std::ldexp(3.f, -24), 0x8003},    // negative subnormal
      {std::numeric_limits<float>::infinity(), 0x7C00},
      {-std::numeric_limits<float>::infinity(), 0xFC00},
  };
  for (const auto& [f, h] : exact) {
    EXPECT_EQ(FloatToHalf(f), h) << f;
    EXPECT_EQ(Bits(HalfToFloat(h)), Bits(f)) << std::hex << h;
  }
}

TEST(HalfTest, RoundsToNearestEven) {
  const float u1 = std::ldexp(1.f, -11);                            // half an ulp at 1.0
  EXPECT_EQ(FloatToHalf(1.f + u1), 0x3C00);                         // tie -> even (down)
  EXPECT_EQ(FloatToHalf(1.f + 3 * u1), 0x3C02);                     // tie -> even (up)
  EXPECT_EQ(FloatToHalf(1.f + u1 + std::ldexp(1.f, -20)), 0x3C01);  // above the tie
  EXPECT_EQ(FloatToHalf(65519.f), 0x7BFF);                          // below the overflow tie
  EXPECT_EQ(FloatToHalf(65520.f), 0x7C00);                          // tie -> even = inf
  EXPECT_EQ(FloatToHalf(1e6f), 0x7C00);
  EXPECT_EQ(FloatToHalf(-1e6f), 0xFC00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.f, -25)), 0x0000);  // tie -> even 0
  EXPECT_EQ(FloatToHalf(std::ldexp(1.f, -26)), 0x0000);
  EXPECT_EQ(FloatToHalf(std::ldexp(3.f, -26)), 0x0001);     // 0.75 units -> 1
  EXPECT_EQ(FloatToHalf(std::ldexp(3.f, -25)), 0x0002);     // 1.5 units -> 2
  EXPECT_EQ(FloatToHalf(std::ldexp(5.f, -25)), 0x0002);     // 2.5 units -> 2
  EXPECT_EQ(FloatToHalf(std::ldexp(2047.f, -25)), 0x0400);  // into the normals
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
}

TEST(HalfTest, NanStaysNan) {
  EXPECT_TRUE(HalfIsNan(FloatToHalf(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(HalfIsNan(FloatToHalf(FromBits(0x7F800001u))));  // payload only in low bits
  EXPECT_TRUE(HalfIsNan(FloatToHalf(FromBits(0xFFC00000u))));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7E00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7C01)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0xFFFF)));
}

TEST(HalfTest, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const uint16_t x = static_cast<uint16_t>(h);
    const float f = HalfToFloat(x);
    if (HalfIsNan(x)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_TRUE(HalfIsNan(FloatToHalf(f))) << std::hex << h;
    } else {
      ASSERT_EQ(FloatToHalf(f), x) << std::hex << h;
    }
  }
}

#if defined(__FLT16_MAX__)
// The compiler's _Float16 conversion (IEEE round-to-nearest-even) is an
// independent reference for arbitrary float32 inputs.
TEST(HalfTest, MatchesCompilerFloat16OnRandomFloats) {
  const uint32_t seed = testing::TestSeed(1234);
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<uint32_t> any_bits;
  // Around the half range, where the interesting roundings are.
  std::uniform_int_distribution<uint32_t> near_half(0x32000000u, 0x48000000u);
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = (i % 2 == 0 ? any_bits(rng) : near_half(rng)) | (i % 4 == 1 ? 0x80000000u : 0u);
    const float f = FromBits(u);
    if (std::isnan(f)) continue;
    const _Float16 ref = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &ref, sizeof(want));
    ASSERT_EQ(FloatToHalf(f), want) << std::hex << "float bits 0x" << u;
  }
}
#endif

TEST(BFloat16Test, KnownValues) {
  EXPECT_EQ(FloatToBFloat16(1.f), 0x3F80);
  EXPECT_EQ(FloatToBFloat16(-2.5f), 0xC020);
  EXPECT_EQ(FloatToBFloat16(0.f), 0x0000);
  EXPECT_EQ(FloatToBFloat16(-0.f), 0x8000);
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(FloatToBFloat16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(BFloat16ToFloat(0x3F80), 1.f);
  EXPECT_EQ(BFloat16ToFloat(0xC020), -2.5f);
  EXPECT_EQ(BFloat16ToFloat(0x3F81), 1.0078125f);
}

TEST(BFloat16Test, RoundsToNearestEven) {
  EXPECT_EQ(FloatToBFloat16(1.00390625f), 0x3F80);  // 1 + 2^-8: tie -> even (1.0)
  EXPECT_EQ(FloatToBFloat16(1.01171875f), 0x3F82);  // 1 + 3*2^-8: tie -> even (up)
  EXPECT_EQ(FloatToBFloat16(1.0078125f), 0x3F81);   // exact
  EXPECT_EQ(FloatToBFloat16(std::nextafter(1.00390625f, 2.f)), 0x3F81);   // above the tie
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::max()), 0x7F80);  // overflows to inf
  EXPECT_EQ(FloatToBFloat16(FromBits(0x7F7F7FFFu)), 0x7F7F);              // below that tie
  EXPECT_EQ(FloatToBFloat16(FromBits(0x00018000u)), 0x0002);              // subnormal tie up
  EXPECT_EQ(FloatToBFloat16(FromBits(0x00008000u)), 0x0000);              // subnormal tie down
}

TEST(BFloat16Test, NanStaysNan) {
  EXPECT_TRUE(BF16IsNan(FloatToBFloat16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(BF16IsNan(FloatToBFloat16(FromBits(0x7F800001u))));  // would truncate to inf
  EXPECT_TRUE(BF16IsNan(FloatToBFloat16(FromBits(0xFF800001u))));
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(0x7FC0)));
}

TEST(BFloat16Test, EveryBFloat16RoundTrips) {
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const uint16_t x = static_cast<uint16_t>(b);
    const float f = BFloat16ToFloat(x);
    if (BF16IsNan(x)) {
      ASSERT_TRUE(BF16IsNan(FloatToBFloat16(f))) << std::hex << b;
    } else {
      ASSERT_EQ(FloatToBFloat16(f), x) << std::hex << b;
    }
  }
}

// Reference: the nearer of the two bfloat16 neighbours (in double), ties to
// the even one.
TEST(BFloat16Test, MatchesNearestNeighbourOnRandomFloats) {
  const uint32_t seed = testing::TestSeed(99);
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    const uint32_t u = bits(rng);
    const float f = FromBits(u);
    if (std::isnan(f)) continue;
    const uint16_t down = static_cast<uint16_t>(u >> 16);  // toward zero
    const uint16_t up = static_cast<uint16_t>(down + 1);   // away from zero (may be inf)
    const double d_down = std::abs(static_cast<double>(f) - BFloat16ToFloat(down));
    // IEEE rounding treats an overflow to inf as rounding to 2^128.
    const double up_value =
        (up & 0x7FFF) == 0x7F80 ? std::copysign(std::ldexp(1.0, 128), f) : BFloat16ToFloat(up);
    const double d_up = std::abs(static_cast<double>(f) - up_value);
    const uint16_t want = d_down < d_up ? down : d_up < d_down ? up : (down & 1) ? up : down;
    ASSERT_EQ(FloatToBFloat16(f), want) << std::hex << "float bits 0x" << u;
  }
}

TEST(ConvertTest, ToFloat32FromEachFloatType) {
  const std::vector<uint16_t> halves = {0x3C00, 0xC100, 0x7BFF, 0x0001};
  std::vector<float> out(4);
  ConvertToFloat32(halves.data(), DType::kFloat16, 4, out.data());
  EXPECT_EQ(out, (std::vector<float>{1.f, -2.5f, 65504.f, std::ldexp(1.f, -24)}));
  const std::vector<uint16_t> bf = {0x3F80, 0xC020, 0x3F81, 0x0000};
  ConvertToFloat32(bf.data(), DType::kBFloat16, 4, out.data());
  EXPECT_EQ(out, (std::vector<float>{1.f, -2.5f, 1.0078125f, 0.f}));
  const std::vector<float> f = {3.f, -4.f, 0.25f, 1e30f};
  ConvertToFloat32(f.data(), DType::kFloat32, 4, out.data());
  EXPECT_EQ(out, f);
}

TEST(TensorTest, DefaultIsUndefined) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_EQ(t.data(), nullptr);
}

TEST(TensorTest, EmptyIsAlignedAndSized) {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::Empty(DType::kFloat32, {n, 3});
    EXPECT_TRUE(t.defined());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
    EXPECT_EQ(t.numel(), n * 3);
    EXPECT_EQ(t.nbytes(), static_cast<size_t>(n * 3 * 4));
    EXPECT_EQ(t.ndim(), 2);
    EXPECT_EQ(t.dim(0), n);
    EXPECT_EQ(t.dim(-1), 3);
    EXPECT_EQ(t.device(), Device::kCpu);
  }
  Tensor none = Tensor::Empty(DType::kInt64, {0, 8});
  EXPECT_TRUE(none.defined());
  EXPECT_EQ(none.numel(), 0);
}

TEST(TensorTest, ZerosAndFromValues) {
  Tensor z = Tensor::Zeros(DType::kBFloat16, {5, 7});
  const auto* zp = z.data_as<const uint16_t>();
  for (int64_t i = 0; i < z.numel(); ++i) ASSERT_EQ(zp[i], 0);
  Tensor f = Tensor::FromFloats({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  EXPECT_EQ(f.dtype(), DType::kFloat32);
  EXPECT_EQ(f.ShapeString(), "[2, 3]");
  EXPECT_EQ(f.data_as<float>()[5], 6.f);
  Tensor i = Tensor::FromInts({7, -1, 9}, {3});
  EXPECT_EQ(i.dtype(), DType::kInt32);
  EXPECT_EQ(i.data_as<int32_t>()[1], -1);
}

TEST(TensorTest, CopiesAliasAndViewsDoNotOwn) {
  Tensor a = Tensor::FromFloats({1.f, 2.f}, {2});
  Tensor b = a;
  b.data_as<float>()[0] = 42.f;
  EXPECT_EQ(a.data_as<float>()[0], 42.f);
  std::vector<float> buf = {1.f, 2.f, 3.f, 4.f};
  Tensor v = Tensor::View(buf.data(), DType::kFloat32, {2, 2});
  EXPECT_EQ(v.data(), buf.data());
  v.data_as<float>()[3] = -1.f;
  EXPECT_EQ(buf[3], -1.f);
}

TEST(TensorTest, ReshapeAndSliceShareStorage) {
  Tensor t = Tensor::FromFloats({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {4, 3});
  Tensor r = t.Reshape({2, 6});
  EXPECT_EQ(r.data(), t.data());
  EXPECT_EQ(r.ShapeString(), "[2, 6]");
  EXPECT_EQ(t.Reshape({-1, 4}).ShapeString(), "[3, 4]");
  Tensor s = t.Slice(1, 3);
  EXPECT_EQ(s.ShapeString(), "[2, 3]");
  EXPECT_EQ(s.data_as<float>()[0], 3.f);
  EXPECT_EQ(s.data_as<float>()[5], 8.f);
  s.data_as<float>()[0] = 100.f;
  EXPECT_EQ(t.data_as<float>()[3], 100.f);
  EXPECT_EQ(t.Slice(4, 4).numel(), 0);
  // A slice keeps the storage alive after the original handle is gone.
  Tensor kept;
  {
    Tensor tmp = Tensor::FromFloats({5.f, 6.f}, {2, 1});
    kept = tmp.Slice(1, 2);
  }
  EXPECT_EQ(kept.data_as<float>()[0], 6.f);
}

TEST(TensorDeathTest, MisuseAbortsWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
#if TESSERA_HAVE_CUDA
  // With the CUDA path built, a CUDA allocation dies only without a device.
  if (absl::StatusOr<int> devices = CudaDeviceCount(); !devices.ok() || *devices == 0) {
    EXPECT_DEATH(Tensor::Empty(DType::kFloat32, {4}, Device::kCuda),
                 "cannot allocate a CUDA tensor float32 \\[4\\]");
  }
#else
  EXPECT_DEATH(Tensor::Empty(DType::kFloat32, {4}, Device::kCuda), "CUDA path is not built");
#endif
  Tensor t = Tensor::Zeros(DType::kFloat32, {4, 3});
  EXPECT_DEATH(t.Reshape({5, 2}), "cannot reshape \\[4, 3\\]");
  EXPECT_DEATH(t.Slice(2, 5), "out of range");
}

}  // namespace
}  // namespace tessera
