// The CPU sampler (worker/exec/sampler.h): uniform draws, greedy,
// temperature, top-k, top-p and min-p against exact distributions.
// Penalties, logprobs, seeds and non-finite logits: sampler_penalties_test.cc.
#include "worker/exec/sampler.h"

#include <cmath>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/sampler_test_util.h"

namespace tessera {
namespace {

using sampler_testing::ChiSquare;
using sampler_testing::ChiSquareBound;
using sampler_testing::FourTokenLogits;
using sampler_testing::Greedy;
using sampler_testing::Histogram;
using sampler_testing::Random;
using sampler_testing::RandomLogits;
using sampler_testing::Row;
using sampler_testing::SampleOne;
using sampler_testing::Softmax;

TEST(SamplerUniformTest, DeterministicAndInRange) {
  double sum = 0.0;
  for (int64_t step = 0; step < 10000; ++step) {
    const double u = SamplerUniform(42, step);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    EXPECT_EQ(u, SamplerUniform(42, step));
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.01);
  EXPECT_NE(SamplerUniform(1, 0), SamplerUniform(2, 0));
  EXPECT_NE(SamplerUniform(1, 0), SamplerUniform(1, 1));
}

TEST(SamplerTest, GreedyIsArgmaxWithTiesToLowestId) {
  Sampler sampler;
  SamplingParams p = Greedy();
  EXPECT_EQ(SampleOne(sampler, {1.0f, 3.0f, 3.0f, 2.0f}, Row(p)).token, 1);
  EXPECT_EQ(SampleOne(sampler, {5.0f, 3.0f, 5.0f}, Row(p)).token, 0);
  EXPECT_EQ(SampleOne(sampler, {-5.0f, -3.0f, -4.0f}, Row(p)).token, 1);
  // Same with logprobs requested (the other greedy code path).
  p.logprobs = 2;
  SampleResult r = SampleOne(sampler, {1.0f, 3.0f, 3.0f, 2.0f}, Row(p));
  EXPECT_EQ(r.token, 1);
  ASSERT_EQ(r.top_logprobs.size(), 2u);
  EXPECT_EQ(r.top_logprobs[0].first, 1);
  EXPECT_EQ(r.top_logprobs[1].first, 2);
  EXPECT_FLOAT_EQ(r.logprob, r.top_logprobs[0].second);
  // Without logprobs requested, none are computed.
  EXPECT_TRUE(std::isnan(SampleOne(sampler, {1.0f, 2.0f}, Row(Greedy())).logprob));

  // A big vocabulary, several rows in a batch.
  const int64_t vocab = 152000;
  std::vector<float> logits;
  std::vector<SamplingRow> rows;
  SamplingParams g = Greedy();
  std::vector<int32_t> expected;
  for (uint32_t i = 0; i < 4; ++i) {
    std::vector<float> row = RandomLogits(vocab, i);
    expected.push_back(
        static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin()));
    logits.insert(logits.end(), row.begin(), row.end());
    rows.push_back(Row(g, i));
  }
  std::vector<SampleResult> results = sampler.Sample(logits.data(), vocab, rows);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(results[i].token, expected[i]);
}

TEST(SamplerTest, TinyTemperatureIsGreedy) {
  Sampler sampler;
  SamplingParams p = Random(1e-7f);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    EXPECT_EQ(SampleOne(sampler, {1.0f, 3.0f, 3.0f, 2.0f}, Row(p, seed)).token, 1);
  }
}

TEST(SamplerTest, TemperatureSamplingMatchesSoftmax) {
  Sampler sampler;
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  for (float t : {1.0f, 0.7f, 2.0f}) {
    SamplingParams p = Random(t);
    std::vector<int> counts = Histogram(sampler, logits, p, 20000);
    const double chi2 = ChiSquare(counts, Softmax(logits, t));
    EXPECT_LT(chi2, ChiSquareBound(4)) << "temperature " << t;
  }
  // Draws along the steps of one seed follow the same distribution.
  SamplingParams p = Random(1.0f);
  std::vector<int> counts(5, 0);
  for (int64_t step = 0; step < 20000; ++step) {
    ++counts[SampleOne(sampler, logits, Row(p, 7, step)).token];
  }
  EXPECT_LT(ChiSquare(counts, Softmax(logits, 1.0)), ChiSquareBound(4));
}

TEST(SamplerTest, TopKOneIsGreedy) {
  Sampler sampler;
  SamplingParams p = Random(1.5f);
  p.top_k = 1;
  const std::vector<float> logits = RandomLogits(1000, 3, 0.5f);
  const int32_t argmax =
      static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<int> counts = Histogram(sampler, logits, p, 2000);
  EXPECT_EQ(counts[argmax], 2000);
}

TEST(SamplerTest, TopKKeepsTheKBestAndRenormalises) {
  Sampler sampler;
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  SamplingParams p = Random(1.0f);
  p.top_k = 3;  // tokens 1, 4, 0
  std::vector<int> counts = Histogram(sampler, logits, p, 20000);
  EXPECT_LT(ChiSquare(counts, Softmax(logits, 1.0, {true, true, false, false, true})),
            ChiSquareBound(2));

  // k above the heap limit (nth_element path) on a big vocabulary, with ties.
  const int64_t vocab = 20000;
  std::vector<float> big = RandomLogits(vocab, 11, 1.0f);
  for (int64_t i = 0; i < vocab; i += 7) big[i] = std::round(big[i] * 4.0f) / 4.0f;
  p.top_k = 1000;
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return big[a] > big[b]; });
  std::vector<bool> in_top(vocab, false);
  for (int i = 0; i < 1000; ++i) in_top[order[i]] = true;
  std::vector<int> big_counts = Histogram(sampler, big, p, 500);
  for (int64_t i = 0; i < vocab; ++i) {
    if (big_counts[i] > 0) {
      EXPECT_TRUE(in_top[i]) << "token " << i << " is outside the top 1000";
    }
  }
}

TEST(SamplerTest, TopPKeepsTheSmallestSetReachingP) {
  Sampler sampler;
  const std::vector<float> logits = FourTokenLogits();  // p = {0.15, 0.5, 0.05, 0.3}
  struct Case {
    float top_p;
    std::vector<bool> keep;
  };
  for (const Case& c : {
           Case{0.4f, {false, true, false, false}},  // 0.5 >= 0.4
           Case{0.7f, {false, true, false, true}},   // 0.5 < 0.7 <= 0.8
           Case{0.85f, {true, true, false, true}},   // 0.8 < 0.85 <= 0.95
           Case{0.97f, {true, true, true, true}},    // 0.95 < 0.97
       }) {
    SamplingParams p = Random(1.0f);
    p.top_p = c.top_p;
    std::vector<int> counts = Histogram(sampler, logits, p, 20000);
    const int kept = static_cast<int>(std::count(c.keep.begin(), c.keep.end(), true));
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(counts[i] > 0, c.keep[i]) << "top_p " << c.top_p << " token " << i;
    }
    if (kept > 1) {
      EXPECT_LT(ChiSquare(counts, Softmax(logits, 1.0, c.keep)), ChiSquareBound(kept - 1))
          << "top_p " << c.top_p;
    }
  }
}

TEST(SamplerTest, TopPAfterTopKRenormalises) {
  Sampler sampler;
  const std::vector<float> logits = FourTokenLogits();  // p = {0.15, 0.5, 0.05, 0.3}
  SamplingParams p = Random(1.0f);
  p.top_k = 2;     // {0.5, 0.3} -> renormalised {0.625, 0.375}
  p.top_p = 0.6f;  // 0.625 >= 0.6: only token 1 (without top-k it would keep token 3 too)
  std::vector<int> counts = Histogram(sampler, logits, p, 2000);
  EXPECT_EQ(counts[1], 2000);
}

TEST(SamplerTest, TopPOverALargeVocabulary) {
  // Flat logits: the nucleus is thousands of tokens, so the incremental
  // partial sort goes through several chunks.
  Sampler sampler;
  const int64_t vocab = 5000;
  std::vector<float> logits = RandomLogits(vocab, 5, 1.0f);
  SamplingParams p = Random(1.0f);
  p.top_p = 0.9f;
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  std::vector<double> probs = Softmax(logits, 1.0);
  std::vector<bool> keep(vocab, false);
  double cum = 0.0;
  int64_t kept = 0;
  for (int32_t id : order) {
    keep[id] = true;
    ++kept;
    cum += probs[id];
    if (cum >= 0.9) break;
  }
  ASSERT_GT(kept, 1000);
  std::vector<int> counts = Histogram(sampler, logits, p, 1500);
  int in_tail = 0;  // draws among the least likely 10% of the nucleus
  for (int64_t i = 0; i < vocab; ++i) {
    if (counts[i] > 0) {
      EXPECT_TRUE(keep[i]) << "token " << i << " is outside the nucleus";
    }
  }
  for (int64_t j = kept * 9 / 10; j < kept; ++j) in_tail += counts[order[j]];
  EXPECT_GT(in_tail, 0);
}

TEST(SamplerTest, MinPKeepsTokensAboveAFractionOfTheBest) {
  Sampler sampler;
  const std::vector<float> logits = FourTokenLogits();  // p = {0.15, 0.5, 0.05, 0.3}
  struct Case {
    float min_p;
    std::vector<bool> keep;
  };
  for (const Case& c : {
           Case{0.35f, {false, true, false, true}},  // >= 0.175
           Case{0.25f, {true, true, false, true}},   // >= 0.125
           Case{0.05f, {true, true, true, true}},    // >= 0.025
           Case{0.9f, {false, true, false, false}},  // >= 0.45
       }) {
    SamplingParams p = Random(1.0f);
    p.min_p = c.min_p;
    std::vector<int> counts = Histogram(sampler, logits, p, 20000);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(counts[i] > 0, c.keep[i]) << "min_p " << c.min_p << " token " << i;
    }
    const int kept = static_cast<int>(std::count(c.keep.begin(), c.keep.end(), true));
    if (kept > 1) {
      EXPECT_LT(ChiSquare(counts, Softmax(logits, 1.0, c.keep)), ChiSquareBound(kept - 1));
    }
    // The same through the sorted (top-k) code path.
    p.top_k = 4;
    std::vector<int> sorted_counts = Histogram(sampler, logits, p, 2000);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(sorted_counts[i] > 0, c.keep[i]) << "min_p " << c.min_p;
  }
}

}  // namespace
}  // namespace tessera
