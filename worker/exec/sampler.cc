#include "worker/exec/sampler.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace tessera {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// Below this temperature a row is decoded greedily (as vLLM's _SAMPLING_EPS):
// 1/T would overflow the float arithmetic long before T reaches 0.
constexpr float kGreedyTemperature = 1e-5f;
// TopK uses a bounded heap up to this k, nth_element over the vocabulary above.
constexpr int64_t kHeapTopKLimit = 256;
// First chunk of the incremental partial sort that top-p uses without top-k.
constexpr int64_t kTopPFirstChunk = 64;

// Sample() runs rows in parallel only from this many logits on.
constexpr int64_t kParallelMinElements = int64_t{1} << 16;

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;

// splitmix64's output function.
uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Orders token ids by logit, highest first, ties to the lower id: a strict
// total order, so partial sorts are deterministic.
struct HigherLogit {
  const float* x;
  bool operator()(int32_t a, int32_t b) const { return x[a] > x[b] || (x[a] == x[b] && a < b); }
};

// Replaces NaN with -inf and +inf with the largest finite float, in place, and
// returns the argmax (ties: lowest id; token 0 when all are -inf) and its value.
int32_t SanitizeAndArgmax(float* x, int64_t vocab, float* max_out) {
  float m = kNegInf;
  int32_t best = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    float v = x[i];
    if (std::isnan(v)) {
      v = kNegInf;
    } else if (v == std::numeric_limits<float>::infinity()) {
      v = std::numeric_limits<float>::max();
    }
    x[i] = v;
    if (v > m) {
      m = v;
      best = static_cast<int32_t>(i);
    }
  }
  *max_out = m;
  return best;
}

// Argmax without touching the logits: NaN never compares greater and the first
// +inf wins, which is what SanitizeAndArgmax would pick too.
int32_t Argmax(const float* x, int64_t vocab) {
  float m = kNegInf;
  int32_t best = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (x[i] > m) {
      m = x[i];
      best = static_cast<int32_t>(i);
    }
  }
  return best;
}

// log(sum(exp(x - m))) given the (finite) max `m`; float exps, double sum.
// A logprob is then (x - m) - that, which stays exact even when m is huge.
double LogSumExpShifted(const float* x, int64_t vocab, float m) {
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(x[i] - m);
  return std::log(sum);
}

}  // namespace

double SamplerUniform(uint64_t seed, int64_t step) {
  // Output `step` of the splitmix64 stream that starts at Mix64(seed): each
  // draw is a pure function of (seed, step), not of any shared state.
  const uint64_t base = Mix64(seed + kGamma);
  const uint64_t bits = Mix64(base + (static_cast<uint64_t>(step) + 1) * kGamma);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// Per-thread buffers. `seen` and `counts` are all zero between rows.
struct Sampler::Scratch {
  std::vector<uint8_t> seen;    // [vocab] repetition-penalty membership
  std::vector<int32_t> counts;  // [vocab] output-token counts
  std::vector<int32_t> ids;     // candidate ids
  std::vector<float> weights;   // candidate weights exp((x - max) / T), by position
  std::vector<float> by_id;     // weights by token id (top-p without top-k)

  void Reserve(int64_t vocab) {
    if (static_cast<int64_t>(seen.size()) < vocab) {
      seen.resize(vocab, 0);
      counts.resize(vocab, 0);
    }
  }

  void ApplyPenalties(float* x, int64_t vocab, const SamplingRow& row);
  // The k highest logits' ids, highest first (ties: lower id), into `out`.
  void TopK(const float* x, int64_t vocab, int64_t k, std::vector<int32_t>& out);
  // Temperature -> top-k -> top-p -> min-p -> draw with uniform `u`.
  int32_t Draw(const float* x, int64_t vocab, float max_logit, const SamplingParams& p, double u);
  SampleResult SampleRow(float* x, int64_t vocab, const SamplingRow& row);
};

void Sampler::Scratch::ApplyPenalties(float* x, int64_t vocab, const SamplingRow& row) {
  const SamplingParams& p = *row.params;
  auto in_vocab = [vocab](int32_t t) { return t >= 0 && t < vocab; };
  if (p.repetition_penalty != 1.0f) {
    const float rp = p.repetition_penalty;
    auto penalise = [&](int32_t t) {
      if (!in_vocab(t) || seen[t]) return;
      seen[t] = 1;
      x[t] = x[t] > 0.0f ? x[t] / rp : x[t] * rp;
    };
    for (int32_t t : row.prompt_tokens) penalise(t);
    for (int32_t t : row.output_tokens) penalise(t);
    for (int32_t t : row.prompt_tokens) {
      if (in_vocab(t)) seen[t] = 0;
    }
    for (int32_t t : row.output_tokens) {
      if (in_vocab(t)) seen[t] = 0;
    }
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    for (int32_t t : row.output_tokens) {
      if (in_vocab(t)) ++counts[t];
    }
    for (int32_t t : row.output_tokens) {
      if (!in_vocab(t) || counts[t] == 0) continue;  // 0: already done
      x[t] -= p.frequency_penalty * static_cast<float>(counts[t]) + p.presence_penalty;
      counts[t] = 0;
    }
  }
}

void Sampler::Scratch::TopK(const float* x, int64_t vocab, int64_t k, std::vector<int32_t>& out) {
  k = std::min(k, vocab);
  const HigherLogit higher{x};
  out.clear();
  if (k <= 0) return;
  if (k <= kHeapTopKLimit) {
    // Heap ordered by `higher`: its front is the worst of the best k so far.
    out.reserve(k);
    for (int64_t i = 0; i < vocab; ++i) {
      const int32_t id = static_cast<int32_t>(i);
      if (static_cast<int64_t>(out.size()) < k) {
        out.push_back(id);
        std::push_heap(out.begin(), out.end(), higher);
      } else if (higher(id, out.front())) {
        std::pop_heap(out.begin(), out.end(), higher);
        out.back() = id;
        std::push_heap(out.begin(), out.end(), higher);
      }
    }
    std::sort_heap(out.begin(), out.end(), higher);  // ascending by `higher`: best first
    return;
  }
  out.resize(vocab);
  std::iota(out.begin(), out.end(), 0);
  std::nth_element(out.begin(), out.begin() + k, out.end(), higher);
  out.resize(k);
  std::sort(out.begin(), out.end(), higher);
}

int32_t Sampler::Scratch::Draw(const float* x, int64_t vocab, float max_logit,
                               const SamplingParams& p, double u) {
  const float inv_t = 1.0f / p.temperature;
  // Weight of a token relative to the best one (whose weight is exactly 1).
  auto weight = [&](int64_t i) { return std::exp((x[i] - max_logit) * inv_t); };
  const bool use_top_k = p.top_k > 0 && p.top_k < vocab;
  const bool use_top_p = p.top_p < 1.0f;
  // min-p: p_i >= min_p * p_max  <=>  weight_i >= min_p (p_max has weight 1);
  // the ratio is the same before and after renormalisation by top-k / top-p.
  const float min_w = p.min_p;

  int64_t n = 0;  // candidates: ids[0, n) with weights[0, n)
  if (!use_top_k && !use_top_p) {
    // Every token is a candidate, in id order; nothing to sort.
    weights.resize(vocab);
    double total = 0.0;
    for (int64_t i = 0; i < vocab; ++i) {
      float w = weight(i);
      if (w < min_w) w = 0.0f;
      weights[i] = w;
      total += w;
    }
    const double threshold = u * total;
    double cum = 0.0;
    int32_t last = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      if (weights[i] <= 0.0f) continue;
      cum += weights[i];
      last = static_cast<int32_t>(i);
      if (cum > threshold) return last;
    }
    return last;  // rounding left the threshold unreached
  }

  if (use_top_k) {
    TopK(x, vocab, p.top_k, ids);  // sorted, highest first
    n = static_cast<int64_t>(ids.size());
    weights.resize(n);
    for (int64_t j = 0; j < n; ++j) weights[j] = weight(ids[j]);
    if (use_top_p) {
      double total = 0.0;
      for (int64_t j = 0; j < n; ++j) total += weights[j];
      const double target = static_cast<double>(p.top_p) * total;
      double cum = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        cum += weights[j];
        if (cum >= target) {
          n = j + 1;
          break;
        }
      }
    }
  } else {
    // top-p over the whole vocabulary: sort only as much of it as the
    // cumulative probability needs, in growing chunks (nth_element + sort).
    by_id.resize(vocab);
    double total = 0.0;
    for (int64_t i = 0; i < vocab; ++i) {
      by_id[i] = weight(i);
      total += by_id[i];
    }
    // Tokens lighter than (1 - top_p) * total / vocab together weigh less than
    // (1 - top_p) * total, and every other token is heavier, so the nucleus is
    // complete before reaching any of them: leave them out of the sort.
    const double drop_below = (1.0 - static_cast<double>(p.top_p)) * total / vocab;
    ids.clear();
    for (int64_t i = 0; i < vocab; ++i) {
      if (by_id[i] > 0.0f && by_id[i] >= drop_below) ids.push_back(static_cast<int32_t>(i));
    }
    const int64_t num = static_cast<int64_t>(ids.size());  // >= 1: the best has weight 1
    const HigherLogit higher{x};
    const double target = static_cast<double>(p.top_p) * total;
    double cum = 0.0;
    int64_t sorted_end = 0;
    int64_t chunk = kTopPFirstChunk;
    n = num;  // if rounding never reaches the target
    while (sorted_end < num) {
      const int64_t end = std::min(num, sorted_end + chunk);
      if (end < num) {
        std::nth_element(ids.begin() + sorted_end, ids.begin() + end, ids.end(), higher);
      }
      std::sort(ids.begin() + sorted_end, ids.begin() + end, higher);
      int64_t j = sorted_end;
      for (; j < end; ++j) {
        cum += by_id[ids[j]];
        if (cum >= target) break;
      }
      if (j < end) {
        n = j + 1;
        break;
      }
      sorted_end = end;
      chunk *= 4;
    }
    weights.resize(n);
    for (int64_t j = 0; j < n; ++j) weights[j] = by_id[ids[j]];
  }

  // Candidates are sorted highest first, so min-p keeps a prefix (at least the
  // best token, whose weight is 1).
  if (min_w > 0.0f) {
    int64_t keep = 1;
    while (keep < n && weights[keep] >= min_w) ++keep;
    n = keep;
  }
  double total = 0.0;
  for (int64_t j = 0; j < n; ++j) total += weights[j];
  const double threshold = u * total;
  double cum = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    cum += weights[j];
    if (cum > threshold && weights[j] > 0.0f) return ids[j];
  }
  // Rounding left the threshold unreached: the last candidate with weight.
  for (int64_t j = n - 1; j > 0; --j) {
    if (weights[j] > 0.0f) return ids[j];
  }
  return ids[0];
}

SampleResult Sampler::Scratch::SampleRow(float* x, int64_t vocab, const SamplingRow& row) {
  const SamplingParams& p = *row.params;
  ApplyPenalties(x, vocab, row);
  const bool greedy = p.temperature < kGreedyTemperature;
  const int64_t n_top = std::clamp<int64_t>(p.logprobs, 0, vocab);
  SampleResult r;
  if (greedy && n_top == 0) {  // the common fast path: one pass, no exp()
    r.token = Argmax(x, vocab);
    r.logprob = kNaN;
    return r;
  }
  float m = kNegInf;
  const int32_t argmax = SanitizeAndArgmax(x, vocab, &m);
  if (m == kNegInf) {  // nothing finite: token 0, documented in the header
    r.token = 0;
    r.logprob = n_top > 0 ? kNegInf : kNaN;
    for (int64_t j = 0; j < n_top; ++j)
      r.top_logprobs.emplace_back(static_cast<int32_t>(j), kNegInf);
    return r;
  }
  double lse = 0.0;  // of x - m
  auto logprob = [&](int32_t id) {
    return static_cast<float>(static_cast<double>(x[id]) - static_cast<double>(m) - lse);
  };
  if (n_top > 0) {
    lse = LogSumExpShifted(x, vocab, m);
    std::vector<int32_t> top;
    TopK(x, vocab, n_top, top);
    r.top_logprobs.reserve(top.size());
    for (int32_t id : top) {
      r.top_logprobs.emplace_back(id, logprob(id));
    }
  }
  r.token = greedy ? argmax : Draw(x, vocab, m, p, SamplerUniform(row.seed, row.step));
  r.logprob = n_top > 0 ? logprob(r.token) : kNaN;
  return r;
}

Sampler::Sampler() = default;
Sampler::~Sampler() = default;

std::vector<SampleResult> Sampler::Sample(float* logits, int64_t vocab,
                                          std::span<const SamplingRow> rows) {
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<SampleResult> results(n);
  if (n == 0 || vocab <= 0) return results;
  // Waking a thread team costs more than sampling a few small rows.
  const bool parallel = n > 1 && n * vocab >= kParallelMinElements;
  const int threads = parallel ? std::max(1, omp_get_max_threads()) : 1;
  while (static_cast<int>(scratch_.size()) < threads)
    scratch_.push_back(std::make_unique<Scratch>());
  for (int t = 0; t < threads; ++t) scratch_[t]->Reserve(vocab);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (parallel)
  for (int64_t i = 0; i < n; ++i) {
    Scratch& s = *scratch_[omp_get_thread_num()];
    results[i] = s.SampleRow(logits + i * vocab, vocab, rows[i]);
  }
  return results;
}

}  // namespace tessera
