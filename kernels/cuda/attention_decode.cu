// Paged attention for decodes (sequences with one query row), split-K
// ("flash-decoding"): the context is cut into partitions of
// kDecodePartitionTokens tokens; one thread block per (partition, sequence,
// KV head) computes, for each query head of the KV head's group, the
// partition's score max, sum of exp and exp-weighted sum of V; a reduce kernel
// then merges the partitions of each (row, head) and also zeroes padding rows.
// Float32 scores, softmax and accumulation; K/V read with 128-bit loads.
#include <algorithm>

#include "common/status_macros.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/scratch.h"

namespace tessera::ops::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kP = kDecodePartitionTokens;
// Query heads handled together per pass over a partition's K/V.
constexpr int kHeadChunk = 8;
constexpr int kMaxHeadDim = 256;

// Split-K partials, indexed by (sequence b, query head h, partition):
// acc [batch, nh, max_parts, hd]; max and sum [batch, nh, max_parts].
struct Partials {
  float* acc = nullptr;
  float* max = nullptr;
  float* sum = nullptr;
  int max_parts = 0;
};

__device__ __forceinline__ int64_t DecodeContext(const AttnParams& p, int b, int max_parts) {
  int64_t context = p.seq_lens[b];
  context = min(context, TableCapacity(p));
  return min(context, static_cast<int64_t>(max_parts) * kP);
}

template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads)
    DecodePartitionKernel(const T* __restrict__ q, const T* __restrict__ k_cache,
                          const T* __restrict__ v_cache, AttnParams p, Partials out) {
  // Vectors of VEC elements one lane handles per token, at most.
  constexpr int NV = (kMaxHeadDim / VEC + 31) / 32;
  extern __shared__ float4 smem4[];
  __shared__ float scratch[32];
  const int part = blockIdx.x, b = blockIdx.y, kvh = blockIdx.z;
  const int32_t start = p.query_start_loc[b], end = p.query_start_loc[b + 1];
  if (end - start != 1 || start < 0 || end > p.rows) return;
  const int64_t context = DecodeContext(p, b, out.max_parts);
  const int64_t t0 = static_cast<int64_t>(part) * kP;
  if (t0 >= context) return;
  const int64_t t1 = min(context, t0 + kP);
  const int len = static_cast<int>(t1 - t0);
  const int hd = p.head_dim, group = p.num_heads / p.num_kv_heads;
  // A token's hd/VEC vectors are spread over `gl` lanes (a power of two);
  // a warp works on 32/gl tokens at once.
  const int vpt = hd / VEC;
  const int gl = (vpt <= 32 && (vpt & (vpt - 1)) == 0) ? vpt : 32;
  const int tpw = 32 / gl;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int sub = lane / gl, gli = lane % gl;

  float* smem = reinterpret_cast<float*>(smem4);
  float* qs = smem;                       // [kHeadChunk][hd], scaled queries
  float* scores = qs + kHeadChunk * hd;   // [kHeadChunk][kP], scores then exp weights
  float* red = scores + kHeadChunk * kP;  // [kWarps][kHeadChunk][hd]

  for (int g0 = 0; g0 < group; g0 += kHeadChunk) {
    const int gc = min(kHeadChunk, group - g0);
    const int h0 = kvh * group + g0;  // first query head of this chunk
    __syncthreads();                  // the previous chunk is done with smem
    const T* qrow = q + (static_cast<int64_t>(start) * p.num_heads + h0) * hd;
    for (int i = threadIdx.x; i < gc * hd; i += blockDim.x) qs[i] = ToFloat(qrow[i]) * p.scale;
    __syncthreads();

    // 1. Scores q.k for every token of the partition.
    for (int64_t base = t0 + warp * tpw; base < t1; base += kWarps * tpw) {  // warp-uniform
      const int64_t t = base + sub;
      const int64_t off = t < t1 ? KvOffset(p, b, t, kvh) : -1;
      float dot[kHeadChunk];
#pragma unroll
      for (int g = 0; g < kHeadChunk; ++g) dot[g] = 0.f;
      if (off >= 0) {
#pragma unroll
        for (int j = 0; j < NV; ++j) {
          const int v = gli + j * gl;
          if (v < vpt) {
            const Vec<T, VEC> kv = LoadVec<T, VEC>(k_cache + off + v * VEC);
#pragma unroll
            for (int e = 0; e < VEC; ++e) {
              const float kf = ToFloat(kv.v[e]);
#pragma unroll
              for (int g = 0; g < kHeadChunk; ++g) {
                if (g < gc) dot[g] += qs[g * hd + v * VEC + e] * kf;
              }
            }
          }
        }
      }
#pragma unroll
      for (int g = 0; g < kHeadChunk; ++g) {
        for (int o = gl / 2; o > 0; o >>= 1) dot[g] += __shfl_xor_sync(0xffffffffu, dot[g], o);
      }
      if (t < t1 && gli == 0) {
#pragma unroll
        for (int g = 0; g < kHeadChunk; ++g) {
          if (g < gc) scores[g * kP + (t - t0)] = off >= 0 ? dot[g] : -INFINITY;
        }
      }
    }
    __syncthreads();

    // 2. Per head: the partition's max, exp weights (in place) and their sum.
    for (int g = 0; g < gc; ++g) {
      float* sg = scores + g * kP;
      float m = -INFINITY;
      for (int i = threadIdx.x; i < len; i += blockDim.x) m = fmaxf(m, sg[i]);
      m = BlockMax(m, scratch);
      float s = 0.f;
      for (int i = threadIdx.x; i < len; i += blockDim.x) {
        const float x = sg[i];
        const float e = x == -INFINITY ? 0.f : expf(x - m);
        sg[i] = e;
        s += e;
      }
      s = BlockSum(s, scratch);
      if (threadIdx.x == 0) {
        const int64_t idx = (static_cast<int64_t>(b) * p.num_heads + h0 + g) * out.max_parts + part;
        out.max[idx] = m;
        out.sum[idx] = s;
      }
    }
    __syncthreads();

    // 3. Exp-weighted sum of V, per lane, then over the warp's token slots,
    // then over the warps through shared memory.
    float acc[kHeadChunk][NV * VEC];
#pragma unroll
    for (int g = 0; g < kHeadChunk; ++g) {
#pragma unroll
      for (int i = 0; i < NV * VEC; ++i) acc[g][i] = 0.f;
    }
    for (int64_t base = t0 + warp * tpw; base < t1; base += kWarps * tpw) {
      const int64_t t = base + sub;
      const int64_t off = t < t1 ? KvOffset(p, b, t, kvh) : -1;
      if (off < 0) continue;  // no shuffles in this loop: divergence is fine
#pragma unroll
      for (int j = 0; j < NV; ++j) {
        const int v = gli + j * gl;
        if (v < vpt) {
          const Vec<T, VEC> vv = LoadVec<T, VEC>(v_cache + off + v * VEC);
#pragma unroll
          for (int g = 0; g < kHeadChunk; ++g) {
            if (g < gc) {
              const float w = scores[g * kP + (t - t0)];
#pragma unroll
              for (int e = 0; e < VEC; ++e) acc[g][j * VEC + e] += w * ToFloat(vv.v[e]);
            }
          }
        }
      }
    }
#pragma unroll
    for (int g = 0; g < kHeadChunk; ++g) {
#pragma unroll
      for (int i = 0; i < NV * VEC; ++i) {
        for (int o = 16; o >= gl; o >>= 1) acc[g][i] += __shfl_xor_sync(0xffffffffu, acc[g][i], o);
      }
    }
    if (sub == 0) {
#pragma unroll
      for (int j = 0; j < NV; ++j) {
        const int v = gli + j * gl;
        if (v < vpt) {
#pragma unroll
          for (int g = 0; g < kHeadChunk; ++g) {
            if (g < gc) {
#pragma unroll
              for (int e = 0; e < VEC; ++e) {
                red[(warp * kHeadChunk + g) * hd + v * VEC + e] = acc[g][j * VEC + e];
              }
            }
          }
        }
      }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < gc * hd; i += blockDim.x) {
      float s = 0.f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) s += red[w * kHeadChunk * hd + i];
      const int g = i / hd, d = i % hd;
      out.acc[((static_cast<int64_t>(b) * p.num_heads + h0 + g) * out.max_parts + part) * hd + d] =
          s;
    }
  }
}

// One block per (row, query head): merges the row's partitions when its
// sequence is a decode, zeroes padding rows, leaves prefill rows alone.
template <typename T>
__global__ void DecodeReduceKernel(T* __restrict__ out, AttnParams p, Partials parts) {
  const int64_t row = blockIdx.x;
  const int h = blockIdx.y;
  const int hd = p.head_dim;
  T* o = out + (row * p.num_heads + h) * hd;
  const int b = FindSeq(p, row);
  bool zero = b < 0;
  int nparts = 0;
  int64_t base = 0;
  if (!zero) {
    if (p.query_start_loc[b + 1] - p.query_start_loc[b] != 1) return;  // prefill kernel's row
    const int64_t context = DecodeContext(p, b, parts.max_parts);
    nparts = static_cast<int>((context + kP - 1) / kP);
    base = (static_cast<int64_t>(b) * p.num_heads + h) * parts.max_parts;
    zero = context <= 0;
  }
  float m = -INFINITY;
  for (int i = 0; i < nparts && !zero; ++i) m = fmaxf(m, parts.max[base + i]);
  zero = zero || m == -INFINITY;  // every token masked (bad block ids)
  if (zero) {
    for (int d = threadIdx.x; d < hd; d += blockDim.x) o[d] = FromFloat<T>(0.f);
    return;
  }
  float denom = 0.f;
  for (int i = 0; i < nparts; ++i) denom += parts.sum[base + i] * expf(parts.max[base + i] - m);
  const float inv = 1.f / denom;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float a = 0.f;
    for (int i = 0; i < nparts; ++i) {
      a += expf(parts.max[base + i] - m) * parts.acc[(base + i) * hd + d];
    }
    o[d] = FromFloat<T>(a * inv);
  }
}

template <typename T, int VEC>
absl::Status LaunchPartitions(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                              const AttnParams& p, const Partials& parts) {
  const size_t smem =
      sizeof(float) * (static_cast<size_t>(kHeadChunk) * p.head_dim + kHeadChunk * kP +
                       static_cast<size_t>(kWarps) * kHeadChunk * p.head_dim);
  auto* kernel = DecodePartitionKernel<T, VEC>;
  if (smem > 48 * 1024) {
    CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(smem)));
  }
  const dim3 grid(parts.max_parts, p.batch, p.num_kv_heads);
  kernel<<<grid, kThreads, smem, Stream()>>>(q.data_as<const T>(), k_cache.data_as<const T>(),
                                             v_cache.data_as<const T>(), p, parts);
  CUDA_RETURN_IF_LAUNCH_ERROR("DecodePartitionKernel");
  return absl::OkStatus();
}

}  // namespace

absl::Status PagedAttentionDecode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                  const AttentionMetadata& md, int num_heads, int num_kv_heads,
                                  float scale, Tensor& out) {
  const AttnParams p = MakeAttnParams(q, k_cache, md, num_heads, num_kv_heads, scale);
  // No rows, or a batch of prefill chunks only (every row in a sequence, so
  // no padding row for the reduce to zero): nothing to launch, no scratch.
  if (p.rows == 0 || md.num_decodes == 0) return absl::OkStatus();
  Partials parts;
  parts.max_parts = std::max(1, (md.max_seq_len + kP - 1) / kP);
  const size_t slots = static_cast<size_t>(std::max(p.batch, 1)) * num_heads * parts.max_parts;
  const size_t bytes = sizeof(float) * slots * (p.head_dim + 2);
  ASSIGN_OR_RETURN(void* ws, ScratchBuffer(ScratchKind::kAttentionDecode, bytes));
  parts.acc = static_cast<float*>(ws);
  parts.max = parts.acc + slots * p.head_dim;
  parts.sum = parts.max + slots;
  return DispatchFloat(q.dtype(), "PagedAttention", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    if (p.batch > 0) {
      constexpr int V = kVec16<T>;
      const bool vec = p.head_dim % V == 0 && Aligned(q.data(), 16) &&
                       Aligned(k_cache.data(), 16) && Aligned(v_cache.data(), 16);
      if (vec) {
        RETURN_IF_ERROR((LaunchPartitions<T, V>(q, k_cache, v_cache, p, parts)));
      } else {
        RETURN_IF_ERROR((LaunchPartitions<T, 1>(q, k_cache, v_cache, p, parts)));
      }
    }
    const dim3 grid(static_cast<unsigned>(p.rows), num_heads);
    DecodeReduceKernel<T><<<grid, 64, 0, Stream()>>>(out.data_as<T>(), p, parts);
    CUDA_RETURN_IF_LAUNCH_ERROR("DecodeReduceKernel");
    return absl::OkStatus();
  });
}

}  // namespace tessera::ops::cuda
