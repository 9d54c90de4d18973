// The arithmetic of Tessera's one sampling rule (kernels/ops.h, Sample), shared
// by every implementation of it: the CUDA kernel (kernels/cuda/sampling.cu),
// its host twin (kernels/cpu/sampling_twin.h), the CPU op
// (kernels/cpu/sampling_cpu.cc) and the worker's Sampler (worker/sampler.cc).
//
// Every function here is __host__ __device__ under nvcc and plain inline C++
// otherwise, and gives the same bits on both sides: no function whose result
// depends on the platform's libm (the weight's exp() is computed here, with
// explicit fmaf), no expression a compiler may contract into an FMA, and
// integer or correctly rounded IEEE operations only. So the token a row
// yields is a function of its (cleaned, penalised) logits, its parameters and
// (seed, step) alone — on any device, in any batch.
//
// Thread-safety: pure functions.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define TESSERA_HOST_DEVICE __host__ __device__
#else
#define TESSERA_HOST_DEVICE
#endif

namespace tessera::ops::sampling {

// 64-bit unsigned as CUDA's atomics spell it (uint64_t is `unsigned long` on
// Linux hosts, a different type).
using u64 = unsigned long long;
static_assert(sizeof(u64) == 8);

// Below this temperature a row is greedy (as vLLM's _SAMPLING_EPS).
inline constexpr float kGreedyTemperature = 1e-5f;
// Weight 1 (the best token's) in the draw's fixed point: w * 2^40, rounded.
inline constexpr float kFixedOne = 1099511627776.0f;
// exp(a) for a below this is under 2^-41 and so rounds to fixed-point 0: such
// tokens are never drawn, and implementations may skip them.
inline constexpr float kNegligibleExponent = -30.f;

TESSERA_HOST_DEVICE inline uint32_t FloatBits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
#endif
}

TESSERA_HOST_DEVICE inline float BitsToFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
#endif
}

// NaN -> -inf, +inf -> the largest finite float, -0 -> +0 (equal logits get
// equal keys).
TESSERA_HOST_DEVICE inline float Clean(float x) {
  if (x != x) return -INFINITY;
  if (x == INFINITY) return FLT_MAX;
  return x == 0.f ? 0.f : x;
}

// Order-preserving map of a (clean) float to uint32: a > b <=> Key(a) > Key(b).
TESSERA_HOST_DEVICE inline uint32_t Key(float x) {
  const uint32_t u = FloatBits(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
TESSERA_HOST_DEVICE inline float KeyToFloat(uint32_t k) {
  return BitsToFloat((k & 0x80000000u) ? (k ^ 0x80000000u) : ~k);
}

// exp(a) for a <= 0, within 2 ulp of the true value, bit-identical on host
// and device: Cody-Waite reduction a = n ln2 + r, |r| <= ln2/2, Cephes' degree-6
// polynomial, every multiply-add an explicit fmaf, then r's result times 2^n
// (a normal float: a >= -87 keeps n >= -126). Below -87: 0.
TESSERA_HOST_DEVICE inline float ExpNonPositive(float a) {
  if (!(a >= -87.f)) return 0.f;  // also -inf and NaN
  if (a > 0.f) a = 0.f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // exact in 9 bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;
  const float n = rintf(a * kLog2e);
  float r = fmaf(-n, kLn2Hi, a);
  r = fmaf(-n, kLn2Lo, r);
  float p = 1.9875691500e-4f;
  p = fmaf(p, r, 1.3981999507e-3f);
  p = fmaf(p, r, 8.3334519073e-3f);
  p = fmaf(p, r, 4.1665795894e-2f);
  p = fmaf(p, r, 1.6666665459e-1f);
  p = fmaf(p, r, 5.0000001201e-1f);
  const float r2 = r * r;
  const float y = fmaf(p, r2, r) + 1.f;
  const int e = static_cast<int>(n) + 127;  // in [1, 127]
  return y * BitsToFloat(static_cast<uint32_t>(e) << 23);
}

// A token's weight relative to the best one (logit m, weight 1):
// exp((x - m) / temperature), with inv_t = 1 / temperature.
TESSERA_HOST_DEVICE inline float Weight(float x, float m, float inv_t) {
  if (x == -INFINITY) return 0.f;
  const float d = x - m;
  return ExpNonPositive(d * inv_t);
}

// The exponent Weight() takes, for implementations that skip negligible
// tokens (exponent < kNegligibleExponent); monotone in x.
TESSERA_HOST_DEVICE inline float WeightExponent(float x, float m, float inv_t) {
  const float d = x - m;
  return d * inv_t;
}

// w * 2^40 rounded to nearest (even): exact, since the scaling is exact.
TESSERA_HOST_DEVICE inline u64 Fixed(float w) {
#if defined(__CUDA_ARCH__)
  return __float2ull_rn(w * kFixedOne);
#else
  return static_cast<u64>(std::nearbyint(static_cast<double>(w) * 1099511627776.0));
#endif
}

// splitmix64's output function.
TESSERA_HOST_DEVICE inline u64 Mix64(u64 z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The row's one uniform draw in [0, 1): output `step` of the splitmix64 stream
// that starts at Mix64(seed + gamma). A pure function of (seed, step), so a
// sequence's draw at output position `step` is reproducible anywhere.
TESSERA_HOST_DEVICE inline double Uniform(u64 seed, int64_t step) {
  constexpr u64 kGamma = 0x9e3779b97f4a7c15ULL;
  const u64 base = Mix64(seed + kGamma);
  const u64 bits = Mix64(base + (static_cast<u64>(step) + 1) * kGamma);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// top-p's target: the running fixed-point weight (tokens by logit, high to
// low) at which the kept prefix ends: ceil(top_p * total), in [1, total]
// (total >= 1).
TESSERA_HOST_DEVICE inline u64 TopPTarget(float top_p, u64 total) {
  const double want = ceil(static_cast<double>(top_p) * static_cast<double>(total));
  u64 target = want < 1.0 ? 1 : static_cast<u64>(want);
  if (target > total) target = total;
  return target;
}

// The draw: the kept token (in id order) whose fixed-point running-weight
// interval [cum, cum + w) holds floor(u * total), clamped to total - 1.
TESSERA_HOST_DEVICE inline u64 DrawThreshold(double u, u64 total) {
  u64 threshold = static_cast<u64>(u * static_cast<double>(total));
  if (threshold >= total) threshold = total - 1;
  return threshold;
}

// min-p's bound on a token's weight: p_i >= min_p * p_max <=> w_i >= min_p;
// <= 0 or NaN: off (0), > 1 acts as 1.
TESSERA_HOST_DEVICE inline float MinWeight(float min_p) {
  return min_p > 0.f ? (min_p < 1.f ? min_p : 1.f) : 0.f;
}

TESSERA_HOST_DEVICE inline bool IsGreedy(float temperature) {
  return !(temperature >= kGreedyTemperature);
}
TESSERA_HOST_DEVICE inline bool TopKOn(int32_t top_k, int64_t vocab) {
  return top_k > 0 && top_k < vocab;
}
TESSERA_HOST_DEVICE inline bool TopPOn(float top_p) { return top_p < 1.f; }  // NaN: off

}  // namespace tessera::ops::sampling
