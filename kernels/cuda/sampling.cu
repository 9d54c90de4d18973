// Sample on CUDA: one thread block per row of logits, nothing leaves the
// device. The rule is ops.h's; this is how the kernel gets there without
// sorting the vocabulary:
//   1. max / argmax and sum of exp(x - max) (fixed-order block reductions:
//      logprob, greedy);
//   2. top-k: the k-th largest logit by radix select over the logits' ordered
//      32-bit keys, 8 bits a pass (4 passes, integer histograms): the
//      threshold key and how many of its ties (lowest ids first) are in;
//   3. top-p: the same radix select over the top-k candidates, but weighted
//      by their fixed-point weights (uint64 histograms): the threshold key
//      where the running weight, from the top, first reaches
//      ceil(top_p * candidate weight), and how many of its ties are needed;
//   4. min-p is a per-token test (w >= min_p);
//   5. two block-wide prefix scans in id order (CUB) over the kept set: the
//      first sums its weight W, the second finds the token whose running
//      weight first exceeds floor(u * W).
// Every sum that decides a token is an integer sum, so the result does not
// depend on the order of additions: same seed and step, same token, in any
// batch. The kernel reads the row about 12 times (fewer without top-k/top-p);
// a row of 128K float32 logits is 512 KiB and stays in L2.
#include <cfloat>
#include <climits>
#include <cub/block/block_scan.cuh>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops_cuda.h"

namespace tessera::ops::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kScanItems = 4;  // ids per thread per scan chunk
constexpr float kGreedyTemperature = 1e-5f;
constexpr float kFixedOne = 1099511627776.0f;  // 2^40: weight 1 in fixed point
using u64 = unsigned long long;

struct RowParams {
  const float* temperature;
  const int32_t* top_k;
  const float* top_p;
  const float* min_p;
  const int64_t* seed;
  const int64_t* step;
};

// NaN -> -inf, +inf -> the largest finite float, -0 -> +0 (so equal logits
// have equal keys).
__device__ __forceinline__ float Clean(float x) {
  if (isnan(x)) return -INFINITY;
  if (x == INFINITY) return FLT_MAX;
  return x == 0.f ? 0.f : x;
}

// Order-preserving map of a float to uint32: a > b <=> Key(a) > Key(b).
__device__ __forceinline__ uint32_t Key(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float KeyToFloat(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k ^ 0x80000000u) : ~k);
}

__device__ __forceinline__ float Weight(float x, float m, float inv_t) {
  return x == -INFINITY ? 0.f : expf((x - m) * inv_t);
}
__device__ __forceinline__ u64 Fixed(float w) { return __float2ull_rn(w * kFixedOne); }

// ops::SampleUniform, bit for bit.
__device__ __forceinline__ u64 Mix64(u64 z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
__device__ __forceinline__ double Uniform(u64 seed, int64_t step) {
  constexpr u64 kGamma = 0x9e3779b97f4a7c15ULL;
  const u64 base = Mix64(seed + kGamma);
  const u64 bits = Mix64(base + (static_cast<u64>(step) + 1) * kGamma);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

template <typename T>
__device__ __forceinline__ float Logit(const T* x, int64_t i) {
  return Clean(ToFloat(x[i]));
}

// Max with its lowest id over the block, returned to every thread.
__device__ void BlockArgMax(float& v, int32_t& id, float* fs, int32_t* is) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int32_t oid = __shfl_xor_sync(0xffffffffu, id, o);
    if (ov > v || (ov == v && oid < id)) {
      v = ov;
      id = oid;
    }
  }
  __syncthreads();
  if (lane == 0) {
    fs[warp] = v;
    is[warp] = id;
  }
  __syncthreads();
  v = lane < warps ? fs[lane] : -INFINITY;
  id = lane < warps ? is[lane] : INT_MAX;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int32_t oid = __shfl_xor_sync(0xffffffffu, id, o);
    if (ov > v || (ov == v && oid < id)) {
      v = ov;
      id = oid;
    }
  }
}

// What selects the kept set: tokens with key > tau, plus the first `ties`
// (by id) of those with key == tau. on == false keeps everything.
struct Cut {
  bool on = false;
  uint32_t tau = 0;
  u64 ties = 0;
};

// Descending radix select over the row's keys, 8 bits per pass.
// WEIGHTED == false: counts; finds the key of rank `target` (1-based, from
// the top) among all tokens. WEIGHTED == true: fixed-point weights of the
// tokens kept by `topk`; finds the key where the running weight from the top
// first reaches ceil(top_p * total) (target computed after the first pass).
// Returns the cut; every thread gets the same.
template <typename T, bool WEIGHTED>
__device__ Cut RadixSelect(const T* x, int64_t vocab, u64 target, float top_p, const Cut& topk,
                           float m, float inv_t, u64* hist) {
  __shared__ uint32_t sh_prefix;
  __shared__ u64 sh_rem;
  uint32_t prefix = 0, mask = 0;
  u64 rem = target;
  // Weight of each top-k tie (all ties share one logit).
  const u64 tie_w = (WEIGHTED && topk.on) ? Fixed(Weight(KeyToFloat(topk.tau), m, inv_t)) : 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float v = Logit(x, i);
      const uint32_t key = Key(v);
      if ((key & mask) != prefix) continue;
      if (WEIGHTED) {
        if (topk.on && key <= topk.tau) continue;  // ties at tau are added below
        const u64 w = Fixed(Weight(v, m, inv_t));
        if (w != 0) atomicAdd(&hist[(key >> shift) & 255u], w);
      } else {
        atomicAdd(&hist[(key >> shift) & 255u], 1ull);
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      if (WEIGHTED && topk.on && (topk.tau & mask) == prefix) {
        hist[(topk.tau >> shift) & 255u] += topk.ties * tie_w;
      }
      if (WEIGHTED && shift == 24) {
        u64 total = 0;
        for (int d = 0; d < 256; ++d) total += hist[d];
        const double want = ceil(static_cast<double>(top_p) * static_cast<double>(total));
        rem = want < 1.0 ? 1 : static_cast<u64>(want);
        if (rem > total) rem = total;
      }
      u64 above = 0;
      int sel = 0;
      for (int d = 255; d >= 0; --d) {
        if (above + hist[d] >= rem) {
          sel = d;
          break;
        }
        above += hist[d];
      }
      sh_prefix = prefix | (static_cast<uint32_t>(sel) << shift);
      sh_rem = rem - above;
    }
    __syncthreads();
    prefix = sh_prefix;
    rem = sh_rem;
    mask |= 0xFFu << shift;
  }
  Cut cut;
  cut.on = true;
  cut.tau = prefix;
  if (WEIGHTED) {
    const u64 w = Fixed(Weight(KeyToFloat(prefix), m, inv_t));
    cut.ties = w == 0 ? ~0ull : (rem + w - 1) / w;
  } else {
    cut.ties = rem;
  }
  return cut;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    SampleKernel(const T* __restrict__ logits, int64_t vocab, RowParams prm,
                 int32_t* __restrict__ tokens, float* __restrict__ logprobs) {
  using Scan = cub::BlockScan<u64, kThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ u64 hist[256];
  __shared__ float fs[32];
  __shared__ int32_t is[32];
  __shared__ int32_t chosen;
  const int64_t row = blockIdx.x;
  const T* x = logits + row * vocab;

  // 1. Max, argmax (lowest id), log-sum-exp.
  float m = -INFINITY;
  int32_t best = INT_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float v = Logit(x, i);
    if (v > m) {  // ids grow along a thread's loop: keeps its lowest
      m = v;
      best = static_cast<int32_t>(i);
    }
  }
  BlockArgMax(m, best, fs, is);
  if (m == -INFINITY) {  // nothing finite
    if (threadIdx.x == 0) {
      tokens[row] = 0;
      logprobs[row] = -INFINITY;
    }
    return;
  }
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) s += expf(Logit(x, i) - m);
  const float lse = logf(BlockSum(s, fs));

  const float temperature = prm.temperature[row];
  if (!(temperature >= kGreedyTemperature)) {
    if (threadIdx.x == 0) {
      tokens[row] = best;
      logprobs[row] = -lse;  // (x[best] - m) - lse with x[best] == m
    }
    return;
  }
  const float inv_t = 1.f / temperature;

  // 2-4. The cuts.
  const int32_t k = prm.top_k[row];
  Cut topk;
  if (k > 0 && k < vocab) {
    topk = RadixSelect<T, false>(x, vocab, static_cast<u64>(k), 0.f, Cut{}, m, inv_t, hist);
  }
  const float top_p = prm.top_p[row];
  Cut topp;
  if (top_p < 1.f) {  // NaN: off
    topp = RadixSelect<T, true>(x, vocab, 0, top_p, topk, m, inv_t, hist);
  }
  const float min_p_raw = prm.min_p[row];
  const float min_w = min_p_raw > 0.f ? fminf(min_p_raw, 1.f) : 0.f;  // NaN: off

  // 5. Two scans in id order: the kept weight W, then the pick.
  if (threadIdx.x == 0) chosen = -1;
  u64 total = 0, threshold = 0;
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      threshold = static_cast<u64>(Uniform(static_cast<u64>(prm.seed[row]), prm.step[row]) *
                                   static_cast<double>(total));
      if (threshold >= total) threshold = total - 1;  // total >= 2^40: the best token is kept
    }
    u64 tie_carry = 0, w_carry = 0;  // low 32 bits: top-k ties, high: top-p ties
    for (int64_t base = 0; base < vocab; base += static_cast<int64_t>(kThreads) * kScanItems) {
      uint32_t keys[kScanItems];
      u64 w[kScanItems];
      bool valid[kScanItems];
      u64 tie_flags = 0;
#pragma unroll
      for (int j = 0; j < kScanItems; ++j) {
        const int64_t i = base + static_cast<int64_t>(threadIdx.x) * kScanItems + j;
        valid[j] = i < vocab;
        const float v = valid[j] ? Logit(x, i) : -INFINITY;
        keys[j] = Key(v);
        const float wf = Weight(v, m, inv_t);
        w[j] = (valid[j] && wf >= min_w) ? Fixed(wf) : 0;
        if (valid[j] && topk.on && keys[j] == topk.tau) tie_flags += 1ull;
        if (valid[j] && topp.on && keys[j] == topp.tau) tie_flags += 1ull << 32;
      }
      u64 tie_before, tie_all;
      Scan(scan_tmp).ExclusiveSum(tie_flags, tie_before, tie_all);
      __syncthreads();
      tie_before += tie_carry;
      u64 kept = 0;
#pragma unroll
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
      Scan(scan_tmp).ExclusiveSum(kept, w_before, w_all);
      __syncthreads();
      if (pass == 1) {
        u64 cum = w_carry + w_before;
#pragma unroll
        for (int j = 0; j < kScanItems; ++j) {
          if (w[j] != 0 && cum <= threshold && threshold < cum + w[j]) {
            chosen =
                static_cast<int32_t>(base + static_cast<int64_t>(threadIdx.x) * kScanItems + j);
          }
          cum += w[j];
        }
      }
      tie_carry += tie_all;
      w_carry += w_all;
    }
    total = w_carry;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const int32_t token = chosen >= 0 ? chosen : best;  // >= 0 unless a bug
    tokens[row] = token;
    logprobs[row] = (Logit(x, token) - m) - lse;
  }
}

}  // namespace

absl::Status Sample(const Tensor& logits, const SamplingTensors& params, Tensor& tokens,
                    Tensor& logprobs) {
  const int64_t n = logits.dim(0), vocab = logits.dim(1);
  if (n == 0) return absl::OkStatus();
  RowParams prm{params.temperature.data_as<const float>(), params.top_k.data_as<const int32_t>(),
                params.top_p.data_as<const float>(),       params.min_p.data_as<const float>(),
                params.seed.data_as<const int64_t>(),      params.step.data_as<const int64_t>()};
  return DispatchFloat(logits.dtype(), "Sample", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    SampleKernel<T><<<n, kThreads, 0, Stream()>>>(logits.data_as<const T>(), vocab, prm,
                                                  tokens.data_as<int32_t>(),
                                                  logprobs.data_as<float>());
    CUDA_RETURN_IF_LAUNCH_ERROR("SampleKernel");
    return absl::OkStatus();
  });
}

}  // namespace tessera::ops::cuda
