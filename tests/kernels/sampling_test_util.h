// Helpers for the ops::Sample tests (sample_test.cc on the CPU,
// cuda_sampling_test.cc on CUDA): per-row parameter tensors, an independent
// float64 reference of the set of tokens a row may yield, and a chi-square
// statistic. Not thread-safe (single-threaded tests).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>
#include <vector>

#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace tessera::testing {

struct RowSampling {
  float temperature = 1.f;
  int32_t top_k = -1;
  float top_p = 1.f;
  float min_p = 0.f;
  uint64_t seed = 0;
  int64_t step = 0;
};

// CPU tensors for `rows`.
inline ops::SamplingTensors MakeSamplingTensors(const std::vector<RowSampling>& rows) {
  const int64_t n = static_cast<int64_t>(rows.size());
  ops::SamplingTensors t;
  t.temperature = Tensor::Empty(DType::kFloat32, {n});
  t.top_k = Tensor::Empty(DType::kInt32, {n});
  t.top_p = Tensor::Empty(DType::kFloat32, {n});
  t.min_p = Tensor::Empty(DType::kFloat32, {n});
  t.seed = Tensor::Empty(DType::kInt64, {n});
  t.step = Tensor::Empty(DType::kInt64, {n});
  for (int64_t i = 0; i < n; ++i) {
    t.temperature.data_as<float>()[i] = rows[i].temperature;
    t.top_k.data_as<int32_t>()[i] = rows[i].top_k;
    t.top_p.data_as<float>()[i] = rows[i].top_p;
    t.min_p.data_as<float>()[i] = rows[i].min_p;
    t.seed.data_as<int64_t>()[i] = static_cast<int64_t>(rows[i].seed);
    t.step.data_as<int64_t>()[i] = rows[i].step;
  }
  return t;
}

// Token ids ordered by logit, high to low, ties by lower id.
inline std::vector<int32_t> OrderByLogit(const float* x, int64_t vocab) {
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
  return ids;
}

// Probabilities softmax(x / temperature) in float64.
inline std::vector<double> Softmax(const float* x, int64_t vocab, double temperature) {
  double m = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) m = std::max(m, static_cast<double>(x[i]));
  std::vector<double> p(vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    p[i] = std::exp((x[i] - m) / temperature);
    sum += p[i];
  }
  for (double& v : p) v /= sum;
  return p;
}

// The tokens a row with finite logits may yield under top-k -> top-p ->
// min-p, computed in float64 from the definitions. Where a cumulative sum
// lands within `slack` of top_p, or a probability within `slack` (relative)
// of the min-p cut, the borderline token is allowed too (the kernels decide
// such near-ties in fixed point).
inline std::set<int32_t> AllowedTokens(const float* x, int64_t vocab, const RowSampling& r,
                                       double slack = 1e-6) {
  const std::vector<int32_t> order = OrderByLogit(x, vocab);
  const std::vector<double> p = Softmax(x, vocab, r.temperature);
  int64_t n = (r.top_k > 0 && r.top_k < vocab) ? r.top_k : vocab;
  if (r.top_p < 1.f) {
    double total = 0;
    for (int64_t j = 0; j < n; ++j) total += p[order[j]];
    double cum = 0;
    for (int64_t j = 0; j < n; ++j) {
      cum += p[order[j]];
      if (cum >= r.top_p * total * (1 - slack)) {
        const bool borderline = std::abs(cum - r.top_p * total) <= slack * total;
        n = std::min<int64_t>(n, j + 1 + (borderline ? 1 : 0));
        break;
      }
    }
  }
  std::set<int32_t> allowed;
  const double pmax = p[order[0]];
  for (int64_t j = 0; j < n; ++j) {
    if (p[order[j]] >= r.min_p * pmax * (1 - slack)) allowed.insert(order[j]);
  }
  return allowed;
}

// Pearson's chi-square of `counts` against probabilities `p` (bins with an
// expected count below 5 are merged into one).
inline double ChiSquare(const std::vector<int64_t>& counts, const std::vector<double>& p,
                        int* degrees_of_freedom) {
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  double chi = 0, small_expected = 0, small_observed = 0;
  int bins = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double e = p[i] * total;
    if (e < 5) {
      small_expected += e;
      small_observed += counts[i];
      continue;
    }
    chi += (counts[i] - e) * (counts[i] - e) / e;
    ++bins;
  }
  if (small_expected > 0) {
    chi += (small_observed - small_expected) * (small_observed - small_expected) /
           std::max(small_expected, 1e-9);
    ++bins;
  }
  *degrees_of_freedom = bins - 1;
  return chi;
}

// Upper 0.1% points of the chi-square distribution by degrees of freedom
// (index = df, 1..10): a correct sampler fails one run in a thousand seeds;
// the seeds are fixed, so the tests are deterministic.
inline double ChiSquareCritical001(int df) {
  static const double kTable[] = {0,      10.828, 13.816, 16.266, 18.467, 20.515,
                                  22.458, 24.322, 26.124, 27.877, 29.588};
  return df >= 1 && df <= 10 ? kTable[df] : INFINITY;
}

}  // namespace tessera::testing
