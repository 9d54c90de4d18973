#include "worker/exec/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

SamplingParams Random(float temperature = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  return p;
}

SamplingRow Row(const SamplingParams& p, uint64_t seed = 0, int64_t step = 0) {
  SamplingRow row;
  row.params = &p;
  row.seed = seed;
  row.step = step;
  return row;
}

// Samples one row of `logits` (copied) and returns the result.
SampleResult SampleOne(Sampler& sampler, std::vector<float> logits, const SamplingRow& row) {
  std::vector<SamplingRow> rows = {row};
  return sampler.Sample(logits.data(), static_cast<int64_t>(logits.size()), rows)[0];
}

// Draws `n` tokens from `logits` with params `p`, seeds 0..n-1 at step 0, in
// batches (so the OpenMP path runs), and returns the count per token.
std::vector<int> Histogram(Sampler& sampler, const std::vector<float>& logits,
                           const SamplingParams& p, int n, uint64_t seed_base = 0) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  std::vector<int> counts(vocab, 0);
  constexpr int kBatch = 1000;
  for (int start = 0; start < n; start += kBatch) {
    const int rows_n = std::min(kBatch, n - start);
    std::vector<float> batch;
    std::vector<SamplingRow> rows;
    for (int i = 0; i < rows_n; ++i) {
      batch.insert(batch.end(), logits.begin(), logits.end());
      rows.push_back(Row(p, seed_base + start + i, 0));
    }
    for (const SampleResult& r : sampler.Sample(batch.data(), vocab, rows)) {
      EXPECT_GE(r.token, 0);
      EXPECT_LT(r.token, vocab);
      ++counts[r.token];
    }
  }
  return counts;
}

// Pearson's chi-square statistic of `counts` against `probs` (cells with
// probability 0 must have count 0).
double ChiSquare(const std::vector<int>& counts, const std::vector<double>& probs) {
  const double n = std::accumulate(counts.begin(), counts.end(), 0.0);
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    const double expected = n * probs[i];
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

std::vector<double> Softmax(const std::vector<float>& logits, double temperature,
                            const std::vector<bool>& keep = {}) {
  std::vector<double> p(logits.size(), 0.0);
  double m = -std::numeric_limits<double>::infinity();
  for (float x : logits) m = std::max(m, static_cast<double>(x));
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!keep.empty() && !keep[i]) continue;
    p[i] = std::exp((logits[i] - m) / temperature);
    sum += p[i];
  }
  for (double& v : p) v /= sum;
  return p;
}

std::vector<double> LogSoftmax64(const std::vector<float>& logits) {
  double m = -std::numeric_limits<double>::infinity();
  for (float x : logits) m = std::max(m, static_cast<double>(x));
  double sum = 0.0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - m);
  std::vector<double> out;
  for (float x : logits) out.push_back(x - m - std::log(sum));
  return out;
}

std::vector<float> RandomLogits(int64_t vocab, uint32_t seed, float scale = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(vocab);
  for (float& x : v) x = dist(rng);
  return v;
}

// Probabilities {0.15, 0.5, 0.05, 0.3} on tokens 0..3, as logits.
std::vector<float> FourTokenLogits() {
  return {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
}

// ~3.5 sigma bound for a chi-square with `dof` degrees of freedom is far
// below this; the seeds are fixed, so the test is deterministic anyway.
double ChiSquareBound(int dof) { return dof + 6.0 * std::sqrt(2.0 * dof) + 5.0; }

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

TEST(SamplerTest, PenaltiesChangeLogitsAsSpecified) {
  Sampler sampler;
  const std::vector<float> base = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
  const std::vector<int32_t> prompt = {0, 1, 1, 99};     // 99: outside the vocab, ignored
  const std::vector<int32_t> output = {1, 2, 2, 5, -1};  // -1: ignored
  auto run = [&](const SamplingParams& p) {
    std::vector<float> logits = base;
    SamplingRow row = Row(p);
    row.prompt_tokens = prompt;
    row.output_tokens = output;
    row.step = static_cast<int64_t>(output.size());
    std::vector<SamplingRow> rows = {row};
    sampler.Sample(logits.data(), static_cast<int64_t>(logits.size()), rows);
    return logits;
  };

  SamplingParams rep = Greedy();
  rep.repetition_penalty = 2.0f;  // once per distinct token of prompt + output
  EXPECT_THAT(run(rep), ::testing::ElementsAre(1.0f, -2.0f, 0.25f, 3.0f, -2.0f, 0.5f));

  SamplingParams presence = Greedy();
  presence.presence_penalty = 0.5f;  // output tokens only, once each
  EXPECT_THAT(run(presence), ::testing::ElementsAre(2.0f, -1.5f, 0.0f, 3.0f, -2.0f, 0.5f));

  SamplingParams frequency = Greedy();
  frequency.frequency_penalty = 0.25f;  // per occurrence in the output
  EXPECT_THAT(run(frequency), ::testing::ElementsAre(2.0f, -1.25f, 0.0f, 3.0f, -2.0f, 0.75f));

  SamplingParams all = Greedy();
  all.repetition_penalty = 2.0f;
  all.presence_penalty = 0.5f;
  all.frequency_penalty = 0.25f;
  // Repetition first, then -= frequency * count + presence.
  EXPECT_THAT(run(all), ::testing::ElementsAre(1.0f, -2.75f, -0.75f, 3.0f, -2.0f, -0.25f));

  // A penalty can change the greedy choice.
  SamplingParams strong = Greedy();
  strong.repetition_penalty = 10.0f;
  std::vector<float> logits = {5.0f, 4.0f};
  SamplingRow row = Row(strong);
  std::vector<int32_t> seen = {0};
  row.output_tokens = seen;
  std::vector<SamplingRow> rows = {row};
  EXPECT_EQ(sampler.Sample(logits.data(), 2, rows)[0].token, 1);
}

TEST(SamplerTest, LogprobsMatchFloat64LogSoftmaxAfterPenalties) {
  Sampler sampler;
  const int64_t vocab = 1000;
  for (float temperature : {0.0f, 0.8f}) {
    std::vector<float> logits = RandomLogits(vocab, 9);
    SamplingParams p = Random(temperature);
    p.top_k = 10;
    p.logprobs = 5;
    p.repetition_penalty = 1.3f;
    const std::vector<int32_t> output = {3, 17, 17, 400};
    // Reference: the penalised logits, then log-softmax in double.
    std::vector<float> penalised = logits;
    for (int32_t t : {3, 17, 400}) {
      penalised[t] = penalised[t] > 0 ? penalised[t] / 1.3f : penalised[t] * 1.3f;
    }
    const std::vector<double> ref = LogSoftmax64(penalised);
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return penalised[a] > penalised[b]; });
    for (uint64_t seed = 0; seed < 20; ++seed) {
      SamplingRow row = Row(p, seed, 4);
      row.output_tokens = output;
      SampleResult r = SampleOne(sampler, logits, row);
      EXPECT_NEAR(r.logprob, ref[r.token], 1e-5);
      ASSERT_EQ(r.top_logprobs.size(), 5u);
      for (int j = 0; j < 5; ++j) {
        EXPECT_EQ(r.top_logprobs[j].first, order[j]);
        EXPECT_NEAR(r.top_logprobs[j].second, ref[order[j]], 1e-5);
      }
    }
  }
}

TEST(SamplerTest, SeededSequencesIgnoreBatchCompositionAndOrder) {
  Sampler sampler;
  const int64_t vocab = 64;
  const int steps = 40;
  SamplingParams plain = Random(1.0f);
  SamplingParams nucleus = Random(0.9f);
  nucleus.top_p = 0.8f;
  nucleus.top_k = 20;
  SamplingParams greedy = Greedy();
  SamplingParams top_p_min_p = Random(1.1f);
  top_p_min_p.top_p = 0.7f;
  top_p_min_p.min_p = 0.02f;
  const std::vector<const SamplingParams*> params = {&plain, &nucleus, &plain, &greedy,
                                                     &top_p_min_p};
  const std::vector<uint64_t> seeds = {11, 12, 13, 14, 15};
  // The logits of sequence s at step t are a fixed function of (s, t).
  auto logits_of = [&](size_t s, int t) { return RandomLogits(vocab, 1000 * s + t, 2.0f); };

  // Alone, one sequence per call.
  std::vector<std::vector<int32_t>> alone(seeds.size());
  for (size_t s = 0; s < seeds.size(); ++s) {
    for (int t = 0; t < steps; ++t) {
      alone[s].push_back(SampleOne(sampler, logits_of(s, t), Row(*params[s], seeds[s], t)).token);
    }
  }
  // Together, in two orders, with unrelated rows mixed in.
  for (const std::vector<size_t>& order :
       {std::vector<size_t>{0, 1, 2, 3, 4}, std::vector<size_t>{3, 4, 1, 0, 2}}) {
    SamplingParams other = Random(1.2f);
    for (int t = 0; t < steps; ++t) {
      std::vector<float> batch;
      std::vector<SamplingRow> rows;
      std::vector<int> which;
      for (size_t s : order) {
        std::vector<float> extra = RandomLogits(vocab, 77 + t + s, 2.0f);
        batch.insert(batch.end(), extra.begin(), extra.end());
        rows.push_back(Row(other, 999 + t, t));
        which.push_back(-1);
        std::vector<float> l = logits_of(s, t);
        batch.insert(batch.end(), l.begin(), l.end());
        rows.push_back(Row(*params[s], seeds[s], t));
        which.push_back(static_cast<int>(s));
      }
      std::vector<SampleResult> results = sampler.Sample(batch.data(), vocab, rows);
      for (size_t i = 0; i < rows.size(); ++i) {
        if (which[i] >= 0) {
          EXPECT_EQ(results[i].token, alone[which[i]][t]) << "seq " << which[i];
        }
      }
    }
  }
}

TEST(SamplerTest, DifferentSeedsGiveDifferentDraws) {
  Sampler sampler;
  const std::vector<float> flat(100, 0.0f);
  SamplingParams p = Random(1.0f);
  int differ = 0;
  for (int64_t step = 0; step < 200; ++step) {
    const int32_t a = SampleOne(sampler, flat, Row(p, 1, step)).token;
    const int32_t b = SampleOne(sampler, flat, Row(p, 2, step)).token;
    EXPECT_EQ(a, SampleOne(sampler, flat, Row(p, 1, step)).token);  // and repeatable
    differ += a != b;
  }
  EXPECT_GT(differ, 180);  // ~198 expected with 100 equally likely tokens
}

TEST(SamplerTest, NaNAndInfinity) {
  Sampler sampler;
  // NaN is never chosen.
  const std::vector<float> with_nan = {kNaN, 1.0f, kNaN, 0.5f};
  EXPECT_EQ(SampleOne(sampler, with_nan, Row(Greedy())).token, 1);
  SamplingParams p = Random(1.0f);
  p.logprobs = 2;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    SampleResult r = SampleOne(sampler, with_nan, Row(p, seed));
    EXPECT_TRUE(r.token == 1 || r.token == 3) << r.token;
    EXPECT_FALSE(std::isnan(r.logprob));
    ASSERT_EQ(r.top_logprobs.size(), 2u);
    EXPECT_EQ(r.top_logprobs[0].first, 1);
    EXPECT_EQ(r.top_logprobs[1].first, 3);
  }
  // +inf is the most likely; two of them share the mass.
  const std::vector<float> with_inf = {1.0f, kInf, 2.0f, kInf};
  EXPECT_EQ(SampleOne(sampler, with_inf, Row(Greedy())).token, 1);
  for (uint64_t seed = 0; seed < 100; ++seed) {
    SampleResult r = SampleOne(sampler, with_inf, Row(p, seed));
    EXPECT_TRUE(r.token == 1 || r.token == 3) << r.token;
    EXPECT_NEAR(r.logprob, std::log(0.5), 1e-6);
  }
  // Nothing finite: token 0, logprob -inf, deterministically.
  const std::vector<float> nothing = {kNaN, -kInf, kNaN};
  EXPECT_EQ(SampleOne(sampler, nothing, Row(Greedy())).token, 0);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    SampleResult r = SampleOne(sampler, nothing, Row(p, seed));
    EXPECT_EQ(r.token, 0);
    EXPECT_EQ(r.logprob, -kInf);
    ASSERT_EQ(r.top_logprobs.size(), 2u);
    EXPECT_EQ(r.top_logprobs[0].second, -kInf);
  }
  SamplingParams nucleus = Random(1.0f);
  nucleus.top_p = 0.5f;
  nucleus.top_k = 2;
  nucleus.min_p = 0.1f;
  EXPECT_EQ(SampleOne(sampler, nothing, Row(nucleus, 3)).token, 0);
}

TEST(SamplerTest, EmptyBatch) {
  Sampler sampler;
  EXPECT_TRUE(sampler.Sample(nullptr, 10, {}).empty());
}

}  // namespace
}  // namespace tessera
