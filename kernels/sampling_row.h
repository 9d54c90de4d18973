// The CUDA sampling kernel's per-row algorithm (kernels/cuda/sampling.cu),
// written once against a thread-block policy so that the same code runs as
// the kernel (one block of 512 threads per row) and, on the host, as its
// serial twin (kernels/cpu/sampling_twin.h, one "thread"), which tests compare
// with the CPU sampler without a GPU.
//
// How the kernel reaches ops.h's rule without sorting the vocabulary:
//   1. max / argmax and sum of exp(x - max) (block reductions: greedy, logprob);
//   2. top-k: the k-th largest logit by radix select over the logits' ordered
//      32-bit keys, 8 bits a pass (4 passes, integer histograms): the
//      threshold key and how many of its ties (lowest ids first) are in;
//   3. top-p: the same radix select over the top-k candidates, weighted by
//      their fixed-point weights: the threshold key where the running weight,
//      from the top, first reaches TopPTarget, and how many of its ties;
//   4. min-p is a per-token test (w >= MinWeight(min_p));
//   5. two block-wide prefix scans in id order over the kept set: the first
//      sums its weight W, the second finds the token whose fixed-point
//      interval holds DrawThreshold(Uniform(seed, step), W).
// Every sum that decides a token is an integer sum of sampling_rule.h's
// bit-exact weights, so the token depends on neither the order of additions
// nor the device.
//
// The Block policy (every thread of the block calls each member together,
// except thread(), threads() and AtomicAdd):
//   int thread() const; int threads() const; void Sync();
//   void ArgMax(float& v, int32_t& id);    // max, lowest id; to every thread
//   float Sum(float v);                    // to every thread
//   void ExclusiveSum(u64 in, u64& before, u64& all);
//   void AtomicAdd(u64* p, u64 v);
//   RowShared& shared();                   // one per block
//   float Exp(float), Log(float);          // for the logprob only
// Thread-safety: functions of their arguments; the Block owns the shared
// scratch, one Block per row at a time.
#pragma once

#include <climits>
#include <cstdint>

#include "kernels/sampling_rule.h"

// nvcc: the templates are __host__ __device__ but call the Block's members,
// which are device-only in the kernel and host-only in the twin.
#if defined(__CUDACC__)
#define TESSERA_HD_TEMPLATE_CHECK_OFF _Pragma("nv_exec_check_disable")
#define TESSERA_UNROLL _Pragma("unroll")
#else
#define TESSERA_HD_TEMPLATE_CHECK_OFF
#define TESSERA_UNROLL
#endif

namespace tessera::ops::sampling {

struct RowParams {
  float temperature = 1.f;
  int32_t top_k = 0;
  float top_p = 1.f;
  float min_p = 0.f;
  u64 seed = 0;
  int64_t step = 0;
};

struct RowResult {
  int32_t token = 0;
  float logprob = 0.f;
};

// Block-shared scratch of one row.
struct RowShared {
  u64 hist[256];
  uint32_t prefix;
  u64 rem;
  int32_t chosen;
};

// Ids per thread per scan chunk.
inline constexpr int kScanItems = 4;

// What selects the kept set: tokens with key > tau, plus the first `ties`
// (by id) of those with key == tau. on == false keeps everything.
struct Cut {
  bool on = false;
  uint32_t tau = 0;
  u64 ties = 0;
};

// Descending radix select over the row's keys, 8 bits per pass.
// kWeighted == false: counts; finds the key of rank `target` (1-based, from
// the top). kWeighted == true: fixed-point weights of the tokens kept by
// `topk`; finds the key where the running weight from the top first reaches
// TopPTarget(top_p, total). Every thread gets the same cut.
TESSERA_HD_TEMPLATE_CHECK_OFF
template <bool kWeighted, typename Block, typename Logits>
TESSERA_HOST_DEVICE Cut RadixSelect(Block& blk, const Logits& x, int64_t vocab, u64 target,
                                    float top_p, const Cut& topk, float m, float inv_t) {
  RowShared& sh = blk.shared();
  uint32_t prefix = 0, mask = 0;
  u64 rem = target;
  // Weight of each top-k tie (all ties share one logit).
  const u64 tie_w = (kWeighted && topk.on) ? Fixed(Weight(KeyToFloat(topk.tau), m, inv_t)) : 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = blk.thread(); i < 256; i += blk.threads()) sh.hist[i] = 0;
    blk.Sync();
    for (int64_t i = blk.thread(); i < vocab; i += blk.threads()) {
      const float v = x(i);
      const uint32_t key = Key(v);
      if ((key & mask) != prefix) continue;
      if (kWeighted) {
        if (topk.on && key <= topk.tau) continue;  // ties at tau are added below
        const u64 w = Fixed(Weight(v, m, inv_t));
        if (w != 0) blk.AtomicAdd(&sh.hist[(key >> shift) & 255u], w);
      } else {
        blk.AtomicAdd(&sh.hist[(key >> shift) & 255u], 1ull);
      }
    }
    blk.Sync();
    if (blk.thread() == 0) {
      if (kWeighted && topk.on && (topk.tau & mask) == prefix) {
        sh.hist[(topk.tau >> shift) & 255u] += topk.ties * tie_w;
      }
      if (kWeighted && shift == 24) {
        u64 total = 0;
        for (int d = 0; d < 256; ++d) total += sh.hist[d];
        rem = TopPTarget(top_p, total);
      }
      u64 above = 0;
      int sel = 0;
      for (int d = 255; d >= 0; --d) {
        if (above + sh.hist[d] >= rem) {
          sel = d;
          break;
        }
        above += sh.hist[d];
      }
      sh.prefix = prefix | (static_cast<uint32_t>(sel) << shift);
      sh.rem = rem - above;
    }
    blk.Sync();
    prefix = sh.prefix;
    rem = sh.rem;
    mask |= 0xFFu << shift;
    // No barrier needed here: thread 0 rewrites sh.prefix only after the next
    // pass's barriers, which every thread reaches after reading it.
  }
  Cut cut;
  cut.on = true;
  cut.tau = prefix;
  if (kWeighted) {
    const u64 w = Fixed(Weight(KeyToFloat(prefix), m, inv_t));
    cut.ties = w == 0 ? ~0ull : (rem + w - 1) / w;
  } else {
    cut.ties = rem;
  }
  return cut;
}

// One row: `x(i)` is the clean logit of token i (sampling_rule.h's Clean).
TESSERA_HD_TEMPLATE_CHECK_OFF
template <typename Block, typename Logits>
TESSERA_HOST_DEVICE RowResult SampleRowOnBlock(Block& blk, const Logits& x, int64_t vocab,
                                               const RowParams& prm) {
  RowShared& sh = blk.shared();
  // 1. Max, argmax (lowest id), log-sum-exp.
  float m = -INFINITY;
  int32_t best = INT_MAX;
  for (int64_t i = blk.thread(); i < vocab; i += blk.threads()) {
    const float v = x(i);
    if (v > m) {  // ids grow along a thread's loop: keeps its lowest
      m = v;
      best = static_cast<int32_t>(i);
    }
  }
  blk.ArgMax(m, best);
  if (m == -INFINITY) return RowResult{0, -INFINITY};  // nothing finite
  float s = 0.f;
  for (int64_t i = blk.thread(); i < vocab; i += blk.threads()) s += blk.Exp(x(i) - m);
  const float lse = blk.Log(blk.Sum(s));
  if (IsGreedy(prm.temperature)) return RowResult{best, -lse};  // x[best] - m == 0
  const float inv_t = 1.f / prm.temperature;

  // 2-4. The cuts.
  Cut topk;
  if (TopKOn(prm.top_k, vocab)) {
    topk = RadixSelect<false>(blk, x, vocab, static_cast<u64>(prm.top_k), 0.f, Cut{}, m, inv_t);
  }
  Cut topp;
  if (TopPOn(prm.top_p)) {
    topp = RadixSelect<true>(blk, x, vocab, 0, prm.top_p, topk, m, inv_t);
  }
  const float min_w = MinWeight(prm.min_p);

  // 5. Two scans in id order: the kept weight W, then the pick.
  if (blk.thread() == 0) sh.chosen = -1;
  blk.Sync();
  u64 total = 0, threshold = 0;
  const int64_t chunk = static_cast<int64_t>(blk.threads()) * kScanItems;
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) threshold = DrawThreshold(Uniform(prm.seed, prm.step), total);
    u64 tie_carry = 0, w_carry = 0;  // tie counts: low 32 bits top-k, high top-p
    for (int64_t base = 0; base < vocab; base += chunk) {
      uint32_t keys[kScanItems];
      u64 w[kScanItems];
      bool valid[kScanItems];
      u64 tie_flags = 0;
      const int64_t first = base + static_cast<int64_t>(blk.thread()) * kScanItems;
      TESSERA_UNROLL
      for (int j = 0; j < kScanItems; ++j) {
        const int64_t i = first + j;
        valid[j] = i < vocab;
        const float v = valid[j] ? x(i) : -INFINITY;
        keys[j] = Key(v);
        const float wf = Weight(v, m, inv_t);
        w[j] = (valid[j] && wf >= min_w) ? Fixed(wf) : 0;
        if (valid[j] && topk.on && keys[j] == topk.tau) tie_flags += 1ull;
        if (valid[j] && topp.on && keys[j] == topp.tau) tie_flags += 1ull << 32;
      }
      u64 tie_before, tie_all;
      blk.ExclusiveSum(tie_flags, tie_before, tie_all);
      tie_before += tie_carry;
      u64 kept = 0;
      TESSERA_UNROLL
      for (int j = 0; j < kScanItems; ++j) {
        const u64 rank_k = tie_before & 0xffffffffull, rank_p = tie_before >> 32;
        bool in = valid[j] && w[j] != 0;
        if (topk.on) in = in && (keys[j] > topk.tau || (keys[j] == topk.tau && rank_k < topk.ties));
        if (topp.on) in = in && (keys[j] > topp.tau || (keys[j] == topp.tau && rank_p < topp.ties));
        if (valid[j] && topk.on && keys[j] == topk.tau) tie_before += 1ull;
        if (valid[j] && topp.on && keys[j] == topp.tau) tie_before += 1ull << 32;
        if (!in) w[j] = 0;
        kept += w[j];
      }
      u64 w_before, w_all;
      blk.ExclusiveSum(kept, w_before, w_all);
      if (pass == 1) {
        u64 cum = w_carry + w_before;
        TESSERA_UNROLL
        for (int j = 0; j < kScanItems; ++j) {
          // At most one token of the row holds the threshold: one writer.
          if (w[j] != 0 && cum <= threshold && threshold < cum + w[j]) {
            sh.chosen = static_cast<int32_t>(first + j);
          }
          cum += w[j];
        }
      }
      tie_carry += tie_all;
      w_carry += w_all;
    }
    total = w_carry;
  }
  blk.Sync();
  const int32_t token = sh.chosen >= 0 ? sh.chosen : best;  // >= 0 unless a bug
  return RowResult{token, (x(token) - m) - lse};
}

}  // namespace tessera::ops::sampling
