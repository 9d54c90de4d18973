// Helpers of the sampler tests: parameters and rows, one-row sampling,
// histograms and a chi-square check against exact float64 probabilities.
// Header-only; for tests/worker/sampler*_test.cc.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "worker/exec/sampler.h"

namespace tessera::sampler_testing {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

inline SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

inline SamplingParams Random(float temperature = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  return p;
}

inline SamplingRow Row(const SamplingParams& p, uint64_t seed = 0, int64_t step = 0) {
  SamplingRow row;
  row.params = &p;
  row.seed = seed;
  row.step = step;
  return row;
}

// Samples one row of `logits` (copied) and returns the result.
inline SampleResult SampleOne(Sampler& sampler, std::vector<float> logits, const SamplingRow& row) {
  std::vector<SamplingRow> rows = {row};
  return sampler.Sample(logits.data(), static_cast<int64_t>(logits.size()), rows)[0];
}

// Draws `n` tokens from `logits` with params `p`, seeds 0..n-1 at step 0, in
// batches (so the OpenMP path runs), and returns the count per token.
inline std::vector<int> Histogram(Sampler& sampler, const std::vector<float>& logits,
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
inline double ChiSquare(const std::vector<int>& counts, const std::vector<double>& probs) {
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

inline std::vector<double> Softmax(const std::vector<float>& logits, double temperature,
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

inline std::vector<double> LogSoftmax64(const std::vector<float>& logits) {
  double m = -std::numeric_limits<double>::infinity();
  for (float x : logits) m = std::max(m, static_cast<double>(x));
  double sum = 0.0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - m);
  std::vector<double> out;
  for (float x : logits) out.push_back(x - m - std::log(sum));
  return out;
}

inline std::vector<float> RandomLogits(int64_t vocab, uint32_t seed, float scale = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(vocab);
  for (float& x : v) x = dist(rng);
  return v;
}

// Probabilities {0.15, 0.5, 0.05, 0.3} on tokens 0..3, as logits.
inline std::vector<float> FourTokenLogits() {
  return {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
}

// ~3.5 sigma bound for a chi-square with `dof` degrees of freedom is far
// below this; the seeds are fixed, so the test is deterministic anyway.
inline double ChiSquareBound(int dof) { return dof + 6.0 * std::sqrt(2.0 * dof) + 5.0; }

}  // namespace tessera::sampler_testing
