#include "kernels/cpu/sampling_cpu.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/cpu/ops_cpu.h"

namespace tessera::ops {
namespace {

constexpr float kGreedyTemperature = 1e-5f;
constexpr float kFixedOne = 1099511627776.0f;  // 2^40
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// As sampling.cu: NaN -> -inf, +inf -> max finite, -0 -> +0.
float Clean(float x) {
  if (std::isnan(x)) return kNegInf;
  if (x == std::numeric_limits<float>::infinity()) return FLT_MAX;
  return x == 0.f ? 0.f : x;
}

uint32_t Key(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

float Weight(float x, float m, float inv_t) {
  return x == kNegInf ? 0.f : std::exp((x - m) * inv_t);
}

uint64_t Fixed(float w) { return static_cast<uint64_t>(std::nearbyint(w * kFixedOne)); }

struct RowResult {
  int32_t token;
  float logprob;
};

RowResult SampleRow(const float* raw, int64_t vocab, float temperature, int32_t top_k, float top_p,
                    float min_p, uint64_t seed, int64_t step, std::vector<float>& v,
                    std::vector<int32_t>& ids, std::vector<uint8_t>& keep) {
  v.resize(vocab);
  float m = kNegInf;
  int32_t best = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    v[i] = Clean(raw[i]);
    if (v[i] > m) {
      m = v[i];
      best = static_cast<int32_t>(i);
    }
  }
  if (m == kNegInf) return {0, kNegInf};
  double sum = 0.0;  // float exps, double sum (the kernel: float, tree-summed)
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(v[i] - m);
  const double lse = std::log(sum);
  if (!(temperature >= kGreedyTemperature)) return {best, static_cast<float>(-lse)};
  const float inv_t = 1.f / temperature;

  // Ordered by logit, high to low, ties by lower id.
  const auto higher = [&](int32_t a, int32_t b) {
    const uint32_t ka = Key(v[a]), kb = Key(v[b]);
    return ka > kb || (ka == kb && a < b);
  };
  const bool use_top_k = top_k > 0 && top_k < vocab;
  const bool use_top_p = top_p < 1.f;  // NaN: off
  keep.assign(vocab, 1);
  if (use_top_k || use_top_p) {
    ids.resize(vocab);
    std::iota(ids.begin(), ids.end(), 0);
    int64_t n = vocab;
    if (use_top_k) {
      n = top_k;
      std::nth_element(ids.begin(), ids.begin() + (n - 1), ids.end(), higher);
      std::sort(ids.begin(), ids.begin() + n, higher);
    } else {
      std::sort(ids.begin(), ids.end(), higher);
    }
    if (use_top_p) {
      uint64_t total = 0;
      for (int64_t j = 0; j < n; ++j) total += Fixed(Weight(v[ids[j]], m, inv_t));
      const double want = std::ceil(static_cast<double>(top_p) * static_cast<double>(total));
      uint64_t target = want < 1.0 ? 1 : static_cast<uint64_t>(want);
      if (target > total) target = total;
      uint64_t cum = 0;
      for (int64_t j = 0; j < n; ++j) {
        cum += Fixed(Weight(v[ids[j]], m, inv_t));
        if (cum >= target) {
          n = j + 1;
          break;
        }
      }
    }
    std::fill(keep.begin(), keep.end(), 0);
    for (int64_t j = 0; j < n; ++j) keep[ids[j]] = 1;
  }
  const float min_w = min_p > 0.f ? std::min(min_p, 1.f) : 0.f;  // NaN: off
  uint64_t total = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const float wf = Weight(v[i], m, inv_t);
    if (keep[i] && wf >= min_w) {
      total += Fixed(wf);
    } else {
      keep[i] = 0;
    }
  }
  uint64_t threshold =
      static_cast<uint64_t>(SampleUniform(seed, step) * static_cast<double>(total));
  if (threshold >= total) threshold = total - 1;  // total >= 2^40: the best token is kept
  uint64_t cum = 0;
  int32_t token = best;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!keep[i]) continue;
    const uint64_t w = Fixed(Weight(v[i], m, inv_t));
    if (w != 0 && cum <= threshold && threshold < cum + w) {
      token = static_cast<int32_t>(i);
      break;
    }
    cum += w;
  }
  return {token, static_cast<float>(static_cast<double>(v[token] - m) - lse)};
}

}  // namespace

double SampleUniform(uint64_t seed, int64_t step) {
  const uint64_t base = Mix64(seed + kGamma);
  const uint64_t bits = Mix64(base + (static_cast<uint64_t>(step) + 1) * kGamma);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

namespace cpu {

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
    std::vector<float> v;
    std::vector<int32_t> ids;
    std::vector<uint8_t> keep;
#pragma omp for schedule(dynamic, 1)
    for (int64_t r = 0; r < n; ++r) {
      const RowResult res =
          SampleRow(x + r * vocab, vocab, temperature[r], top_k[r], top_p[r], min_p[r],
                    static_cast<uint64_t>(seed[r]), step[r], v, ids, keep);
      tok[r] = res.token;
      lp[r] = res.logprob;
    }
  }
  return absl::OkStatus();
}

}  // namespace cpu
}  // namespace tessera::ops
