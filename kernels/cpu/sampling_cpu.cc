#include "kernels/cpu/sampling_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cpu/ops_cpu.h"
#include "kernels/sampling_rule.h"

namespace tessera::ops {
namespace {

namespace rule = sampling;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// First chunk of top-p's incremental partial sort.
constexpr int64_t kTopPFirstChunk = 64;

}  // namespace

double SampleUniform(uint64_t seed, int64_t step) { return rule::Uniform(seed, step); }

namespace cpu {

int32_t RowSampler::Pick(const float* x, int64_t vocab, const sampling::RowParams& p) {
  float m = kNegInf;
  int32_t best = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (x[i] > m) {
      m = x[i];
      best = static_cast<int32_t>(i);
    }
  }
  if (m == kNegInf || rule::IsGreedy(p.temperature)) return best;
  const float inv_t = 1.f / p.temperature;

  // The tokens that can be drawn, in id order. The others weigh under 2^-41
  // (fixed-point 0) and, their logits being lower, rank after all of these,
  // so leaving them out changes no cut and no draw.
  cand_.clear();
  for (int64_t i = 0; i < vocab; ++i) {
    if (rule::WeightExponent(x[i], m, inv_t) >= rule::kNegligibleExponent) {
      cand_.push_back({x[i], rule::Weight(x[i], m, inv_t), static_cast<int32_t>(i)});
    }
  }
  // By logit, high to low, ties by lower id: the order of the cuts.
  const auto higher = [](const Candidate& a, const Candidate& b) {
    return a.x > b.x || (a.x == b.x && a.id < b.id);
  };
  const auto begin = cand_.begin();
  int64_t n = static_cast<int64_t>(cand_.size());  // >= 1: the best token
  bool id_order = true;
  if (rule::TopKOn(p.top_k, vocab) && p.top_k < n) {
    std::nth_element(begin, begin + (p.top_k - 1), begin + n, higher);
    n = p.top_k;
    id_order = false;
  }
  if (rule::TopPOn(p.top_p)) {
    rule::u64 total = 0;
    for (int64_t j = 0; j < n; ++j) total += rule::Fixed(cand_[j].w);
    const rule::u64 target = rule::TopPTarget(p.top_p, total);
    // Sort only as much of the order as the target needs, in growing chunks.
    rule::u64 cum = 0;
    int64_t sorted_end = 0, chunk = kTopPFirstChunk, cut = n;
    while (sorted_end < n && cut == n) {
      const int64_t end = std::min(n, sorted_end + chunk);
      if (end < n) std::nth_element(begin + sorted_end, begin + end, begin + n, higher);
      std::sort(begin + sorted_end, begin + end, higher);
      for (int64_t j = sorted_end; j < end; ++j) {
        cum += rule::Fixed(cand_[j].w);
        if (cum >= target) {
          cut = j + 1;
          break;
        }
      }
      sorted_end = end;
      chunk *= 4;
    }
    n = cut;
    id_order = false;
  }
  // min-p, and the draw in id order over what is kept.
  const float min_w = rule::MinWeight(p.min_p);
  int64_t kept = 0;
  for (int64_t j = 0; j < n; ++j) {
    if (cand_[j].w >= min_w && rule::Fixed(cand_[j].w) != 0) cand_[kept++] = cand_[j];
  }
  if (!id_order) {
    std::sort(begin, begin + kept,
              [](const Candidate& a, const Candidate& b) { return a.id < b.id; });
  }
  rule::u64 total = 0;
  for (int64_t j = 0; j < kept; ++j) total += rule::Fixed(cand_[j].w);
  const rule::u64 threshold = rule::DrawThreshold(rule::Uniform(p.seed, p.step), total);
  rule::u64 cum = 0;
  for (int64_t j = 0; j < kept; ++j) {
    const rule::u64 w = rule::Fixed(cand_[j].w);
    if (threshold < cum + w) return cand_[j].id;
    cum += w;
  }
  return best;  // unreachable: the best token (weight 2^40) is always kept
}

absl::Status Sample(const Tensor& logits, const SamplingTensors& params, Tensor& tokens,
                    Tensor& logprobs) {
  const int64_t n = logits.dim(0), vocab = logits.dim(1);
  const auto* x = logits.data_as<const float>();
  const auto* temperature = params.temperature.data_as<const float>();
  const auto* top_k = params.top_k.data_as<const int32_t>();
  const auto* top_p = params.top_p.data_as<const float>();
  const auto* min_p = params.min_p.data_as<const float>();
  const auto* seed = params.seed.data_as<const int64_t>();
  const auto* step = params.step.data_as<const int64_t>();
  auto* tok = tokens.data_as<int32_t>();
  auto* lp = logprobs.data_as<float>();
#pragma omp parallel num_threads(NumThreads()) if (n > 1 && n * vocab >= kMinParallelWork)
  {
    std::vector<float> v(vocab);
    RowSampler sampler;
#pragma omp for schedule(dynamic, 1)
    for (int64_t r = 0; r < n; ++r) {
      const float* raw = x + r * vocab;
      float m = kNegInf;
      for (int64_t i = 0; i < vocab; ++i) {
        v[i] = rule::Clean(raw[i]);
        m = std::max(m, v[i]);
      }
      sampling::RowParams p;
      p.temperature = temperature[r];
      p.top_k = top_k[r];
      p.top_p = top_p[r];
      p.min_p = min_p[r];
      p.seed = static_cast<rule::u64>(seed[r]);
      p.step = step[r];
      tok[r] = sampler.Pick(v.data(), vocab, p);
      if (m == kNegInf) {
        lp[r] = kNegInf;
        continue;
      }
      // The logprob, apart from the draw: float exps, double sum.
      double sum = 0.0;
      for (int64_t i = 0; i < vocab; ++i) sum += std::exp(v[i] - m);
      lp[r] = static_cast<float>(static_cast<double>(v[tok[r]] - m) - std::log(sum));
    }
  }
  return absl::OkStatus();
}

}  // namespace cpu
}  // namespace tessera::ops
