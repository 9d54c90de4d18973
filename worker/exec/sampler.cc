#include "worker/exec/sampler.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/cpu/sampling_cpu.h"
#include "kernels/sampling_rule.h"

namespace tessera {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// TopK uses a bounded heap up to this k, nth_element over the vocabulary above.
constexpr int64_t kHeapTopKLimit = 256;

// Sample() runs rows in parallel only from this many logits on.
constexpr int64_t kParallelMinElements = int64_t{1} << 16;

// Orders token ids by logit, highest first, ties to the lower id: a strict
// total order, so partial sorts are deterministic.
struct HigherLogit {
  const float* x;
  bool operator()(int32_t a, int32_t b) const { return x[a] > x[b] || (x[a] == x[b] && a < b); }
};

// Cleans the logits in place (ops::sampling::Clean: NaN -> -inf, +inf -> the
// largest finite float, -0 -> +0) and returns the argmax (ties: lowest id;
// token 0 when all are -inf) and its value.
int32_t CleanAndArgmax(float* x, int64_t vocab, float* max_out) {
  float m = kNegInf;
  int32_t best = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const float v = ops::sampling::Clean(x[i]);
    x[i] = v;
    if (v > m) {
      m = v;
      best = static_cast<int32_t>(i);
    }
  }
  *max_out = m;
  return best;
}

// The same argmax without touching the logits.
int32_t Argmax(const float* x, int64_t vocab) {
  float m = kNegInf;
  int32_t best = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const float v = ops::sampling::Clean(x[i]);
    if (v > m) {
      m = v;
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

double SamplerUniform(uint64_t seed, int64_t step) { return ops::sampling::Uniform(seed, step); }

// Per-thread buffers. `seen` and `counts` are all zero between rows.
struct Sampler::Scratch {
  std::vector<uint8_t> seen;    // [vocab] repetition-penalty membership
  std::vector<int32_t> counts;  // [vocab] output-token counts

  void Reserve(int64_t vocab) {
    if (static_cast<int64_t>(seen.size()) < vocab) {
      seen.resize(vocab, 0);
      counts.resize(vocab, 0);
    }
  }

  void ApplyPenalties(float* x, int64_t vocab, const SamplingRow& row);
  // The k highest logits' ids, highest first (ties: lower id), into `out`.
  void TopK(const float* x, int64_t vocab, int64_t k, std::vector<int32_t>& out);
  ops::cpu::RowSampler rule;  // the draw: kernels/sampling_rule.h's rule
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

SampleResult Sampler::Scratch::SampleRow(float* x, int64_t vocab, const SamplingRow& row) {
  const SamplingParams& p = *row.params;
  ApplyPenalties(x, vocab, row);
  const bool greedy = ops::sampling::IsGreedy(p.temperature);
  const int64_t n_top = std::clamp<int64_t>(p.logprobs, 0, vocab);
  SampleResult r;
  if (greedy && n_top == 0) {  // the common fast path: one pass, no exp()
    r.token = Argmax(x, vocab);
    r.logprob = kNaN;
    return r;
  }
  float m = kNegInf;
  const int32_t argmax = CleanAndArgmax(x, vocab, &m);
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
  // The draw never looks at the logprobs: the same token with or without them.
  if (greedy) {
    r.token = argmax;
  } else {
    ops::sampling::RowParams rp;
    rp.temperature = p.temperature;
    rp.top_k = p.top_k;
    rp.top_p = p.top_p;
    rp.min_p = p.min_p;
    rp.seed = row.seed;
    rp.step = row.step;
    r.token = rule.Pick(x, vocab, rp);
  }
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
