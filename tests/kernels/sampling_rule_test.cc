// The one sampling rule (kernels/sampling_rule.h) without a GPU: its
// bit-exact exp() is accurate; and the CUDA kernel's per-row algorithm
// (kernels/sampling_row.h, run here through its serial host twin) picks the
// same token as the CPU sampler (kernels/cpu/sampling_cpu.h) on random rows
// of every shape the rule distinguishes: greedy, top-k, top-p, min-p and
// their combinations, ties, NaN/inf logits, vocabularies from 1 to 128K.
#include "kernels/sampling_rule.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cpu/sampling_cpu.h"
#include "kernels/cpu/sampling_twin.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "tests/kernels/sampling_test_util.h"

namespace tessera {
namespace {

namespace rule = ops::sampling;
constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(SamplingRuleTest, ExpIsWithinTwoUlpOfTheTrueValue) {
  EXPECT_EQ(rule::ExpNonPositive(0.f), 1.f);
  EXPECT_EQ(rule::ExpNonPositive(-0.f), 1.f);
  EXPECT_EQ(rule::ExpNonPositive(-87.5f), 0.f);
  EXPECT_EQ(rule::ExpNonPositive(-kInf), 0.f);
  EXPECT_EQ(rule::ExpNonPositive(std::numeric_limits<float>::quiet_NaN()), 0.f);
  double worst = 0;
  float worst_at = 0;
  for (int i = 0; i <= 400000; ++i) {
    const float a = -87.f * static_cast<float>(i) / 400000.f;
    const double want = std::exp(static_cast<double>(a));
    const double err = std::abs(static_cast<double>(rule::ExpNonPositive(a)) - want) / want;
    if (err > worst) {
      worst = err;
      worst_at = a;
    }
  }
  EXPECT_LE(worst, 2 * 0x1.0p-24) << "worst relative error at a = " << worst_at;
}

TEST(SamplingRuleTest, FixedPointAndKeys) {
  EXPECT_EQ(rule::Fixed(1.f), rule::u64{1} << 40);
  EXPECT_EQ(rule::Fixed(0x1.0p-42f), 0u);
  EXPECT_EQ(rule::Fixed(0x1.0p-40f), 1u);
  EXPECT_LT(rule::Key(-1.f), rule::Key(0.f));
  EXPECT_LT(rule::Key(0.f), rule::Key(1e-30f));
  EXPECT_LT(rule::Key(-kInf), rule::Key(-std::numeric_limits<float>::max()));
  EXPECT_EQ(rule::Key(rule::Clean(-0.f)), rule::Key(0.f));
  EXPECT_EQ(rule::KeyToFloat(rule::Key(-3.5f)), -3.5f);
  // Tokens below the negligible exponent weigh fixed-point 0.
  EXPECT_EQ(rule::Fixed(rule::ExpNonPositive(rule::kNegligibleExponent)), 0u);
}

// A row of logits of one of several kinds.
std::vector<float> RandomRow(std::mt19937& rng, int64_t vocab, int kind) {
  std::vector<float> x(vocab);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);
  for (float& v : x) {
    switch (kind) {
      case 0:  // peaked, like a trained model's logits
        v = 4.f * normal(rng);
        break;
      case 1:  // flat: every token a candidate
        v = uniform(rng);
        break;
      case 2:  // few distinct values: ties everywhere (bfloat16-like)
        v = std::round(normal(rng) * 2.f) / 2.f;
        break;
      default: {  // specials mixed in
        const float u = uniform(rng);
        v = u < 0.05f   ? std::numeric_limits<float>::quiet_NaN()
            : u < 0.1f  ? -kInf
            : u < 0.11f ? -0.f
            : u < 0.12f ? 0.f
                        : 3.f * normal(rng);
        break;
      }
    }
  }
  if (kind == 3 && vocab > 4 && uniform(rng) < 0.3f) x[vocab / 2] = kInf;
  return x;
}

rule::RowParams RandomParams(std::mt19937& rng, int64_t vocab) {
  const float temperatures[] = {0.f, 0.3f, 0.7f, 1.f, 1.5f, 5.f};
  const int32_t top_ks[] = {
      0, -1, 1, 2, 5, 40, static_cast<int32_t>(vocab), static_cast<int32_t>(vocab / 2 + 1)};
  const float top_ps[] = {1.f, 0.95f, 0.9f, 0.5f, 0.1f, 0.f, 0.999f};
  const float min_ps[] = {0.f, 0.f, 0.01f, 0.1f, 0.5f, 1.f};
  auto pick = [&rng](const auto& a) {
    return a[std::uniform_int_distribution<size_t>(0, std::size(a) - 1)(rng)];
  };
  rule::RowParams p;
  p.temperature = pick(temperatures);
  p.top_k = pick(top_ks);
  p.top_p = pick(top_ps);
  p.min_p = pick(min_ps);
  p.seed = (static_cast<rule::u64>(rng()) << 32) | rng();
  p.step = std::uniform_int_distribution<int64_t>(0, 4096)(rng);
  return p;
}

std::vector<float> Cleaned(const std::vector<float>& x) {
  std::vector<float> v(x.size());
  for (size_t i = 0; i < x.size(); ++i) v[i] = rule::Clean(x[i]);
  return v;
}

TEST(SamplingRuleTest, KernelTwinPicksTheCpuSamplersTokenOnRandomRows) {
  std::mt19937 rng(1501);
  ops::cpu::RowSampler cpu;
  const int64_t vocabs[] = {1, 2, 3, 7, 64, 1000, 4099};
  int rows = 0, non_greedy = 0, not_argmax = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const int64_t vocab = vocabs[trial % std::size(vocabs)];
    const int kind = (trial / 7) % 4;
    const std::vector<float> x = RandomRow(rng, vocab, kind);
    const rule::RowParams p = RandomParams(rng, vocab);
    SCOPED_TRACE(absl::StrCat("trial ", trial, " vocab ", vocab, " kind ", kind, " T ",
                              p.temperature, " top_k ", p.top_k, " top_p ", p.top_p, " min_p ",
                              p.min_p));
    const rule::RowResult twin = ops::cpu::SampleRowTwin(x.data(), vocab, p);
    const std::vector<float> v = Cleaned(x);
    const int32_t token = cpu.Pick(v.data(), vocab, p);
    ASSERT_EQ(twin.token, token);
    ++rows;
    if (!rule::IsGreedy(p.temperature)) {
      ++non_greedy;
      not_argmax += token != cpu.Pick(v.data(), vocab, rule::RowParams{.temperature = 0.f});
    }
  }
  // The trials did exercise real draws, not just argmaxes.
  EXPECT_GT(non_greedy, rows / 2);
  EXPECT_GT(not_argmax, rows / 10);
}

TEST(SamplingRuleTest, KernelTwinAndCpuAgreeOnLargeVocabularies) {
  std::mt19937 rng(1502);
  ops::cpu::RowSampler cpu;
  const int64_t vocab = 128256;
  for (int kind = 0; kind < 4; ++kind) {
    const std::vector<float> x = RandomRow(rng, vocab, kind);
    const std::vector<float> v = Cleaned(x);
    for (const rule::RowParams& base :
         {rule::RowParams{.top_p = 0.9f}, rule::RowParams{.top_k = 50, .top_p = 0.95f},
          rule::RowParams{.top_k = 1000, .min_p = 0.05f}, rule::RowParams{.temperature = 0.6f},
          rule::RowParams{.temperature = 2.f, .top_p = 0.5f, .min_p = 0.001f}}) {
      for (int64_t step = 0; step < 3; ++step) {
        rule::RowParams p = base;
        p.seed = 77 + kind;
        p.step = step;
        SCOPED_TRACE(absl::StrCat("kind ", kind, " T ", p.temperature, " top_k ", p.top_k,
                                  " top_p ", p.top_p, " min_p ", p.min_p, " step ", step));
        EXPECT_EQ(ops::cpu::SampleRowTwin(x.data(), vocab, p).token, cpu.Pick(v.data(), vocab, p));
      }
    }
  }
}

TEST(SamplingRuleTest, OpsSampleOnTheCpuEqualsTheKernelTwin) {
  std::mt19937 rng(1503);
  const int64_t n = 64, vocab = 3000;
  std::vector<testing::RowSampling> rows(n);
  Tensor logits = Tensor::Empty(DType::kFloat32, {n, vocab});
  for (int64_t r = 0; r < n; ++r) {
    const std::vector<float> x = RandomRow(rng, vocab, static_cast<int>(r % 4));
    std::copy(x.begin(), x.end(), logits.data_as<float>() + r * vocab);
    const rule::RowParams p = RandomParams(rng, vocab);
    rows[r] = {p.temperature, p.top_k, p.top_p, p.min_p, p.seed, p.step};
  }
  const ops::SamplingTensors params = testing::MakeSamplingTensors(rows);
  Tensor tok_a = Tensor::Empty(DType::kInt32, {n}), lp_a = Tensor::Empty(DType::kFloat32, {n});
  Tensor tok_b = Tensor::Empty(DType::kInt32, {n}), lp_b = Tensor::Empty(DType::kFloat32, {n});
  ASSERT_TRUE(ops::Sample(logits, params, tok_a, lp_a).ok());
  ASSERT_TRUE(ops::cpu::SampleTwin(logits, params, tok_b, lp_b).ok());
  for (int64_t r = 0; r < n; ++r) {
    EXPECT_EQ(tok_a.data_as<int32_t>()[r], tok_b.data_as<int32_t>()[r]) << "row " << r;
    const float a = lp_a.data_as<float>()[r], b = lp_b.data_as<float>()[r];
    if (std::isinf(a) || std::isinf(b)) {
      EXPECT_EQ(a, b) << "row " << r;
    } else {
      EXPECT_NEAR(a, b, 1e-3f * std::max(1.f, std::abs(a))) << "row " << r;
    }
  }
}

TEST(SamplingRuleTest, TwinRejectsWhatItCannotRun) {
  Tensor logits = Tensor::Empty(DType::kInt32, {1, 4});
  const ops::SamplingTensors params = testing::MakeSamplingTensors({testing::RowSampling{}});
  Tensor tok = Tensor::Empty(DType::kInt32, {1}), lp = Tensor::Empty(DType::kFloat32, {1});
  const absl::Status s = ops::cpu::SampleTwin(logits, params, tok, lp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("int32"), std::string::npos) << s;
}

}  // namespace
}  // namespace tessera
