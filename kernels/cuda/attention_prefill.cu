// Paged attention for prefill chunks (sequences with more than one query row)
// over the paged cache, which already holds the cached prefix and the chunk's
// own K/V (KvStore runs first). Causal: query row i of a sequence with q_len
// rows and seq_len context sits at position seq_len - q_len + i and attends to
// positions [0, that].
//
// A thread block takes kItems (query row, query head) items of one sequence
// and one KV head (rows consecutive, all the heads of the KV head's group), so
// each K/V tile it loads from the cache serves kItems queries. Per tile of
// kTile tokens: K and V are staged in shared memory as float32, lane j of a
// warp scores token j for the warp's kItemsPerWarp items, an online softmax
// (running max and sum, float32) updates each item, and the exp weights times
// V are accumulated with each lane owning head_dim/32 output dimensions.
// CUDA cores only (no tensor cores): correct for float32/float16/bfloat16
// alike, about an order of magnitude below a tensor-core flash-attention
// kernel for long prefills.
#include <algorithm>

#include "common/status_macros.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops_cuda.h"

namespace tessera::ops::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kItemsPerWarp = 8;
constexpr int kItems = kWarps * kItemsPerWarp;
constexpr int kTile = 32;  // tokens per K/V tile: one per lane

size_t SharedBytes(int hd) {
  const size_t ks = static_cast<size_t>(hd) + 4;
  return sizeof(float) * (static_cast<size_t>(kItems) * hd + 2 * kTile * ks + kItems * kTile) +
         sizeof(int) * kTile;
}

// DPL: output dimensions per lane (head_dim <= 32 * DPL); VEC: elements per
// K/V load.
template <typename T, int DPL, int VEC>
__global__ void __launch_bounds__(kThreads)
    PrefillKernel(const T* __restrict__ q, const T* __restrict__ k_cache,
                  const T* __restrict__ v_cache, T* __restrict__ out, AttnParams p) {
  extern __shared__ float4 smem4[];
  const int hd = p.head_dim;
  const int ks = hd + 4;  // padded K/V row: conflict-free float4 reads by lane
  float* qs = reinterpret_cast<float*>(smem4);                // [kItems][hd], scaled
  float* kt_s = qs + kItems * hd;                             // [kTile][ks]
  float* vt_s = kt_s + kTile * ks;                            // [kTile][ks]
  float* ps = vt_s + kTile * ks;                              // [kItems][kTile] exp weights
  int* tok_ok = reinterpret_cast<int*>(ps + kItems * kTile);  // [kTile]

  const int b = blockIdx.y, kvh = blockIdx.z;
  const int32_t start = p.query_start_loc[b], end = p.query_start_loc[b + 1];
  const int q_len = end - start;
  if (q_len < 2 || start < 0 || end > p.rows) return;  // decodes: the split-K kernel
  const int group = p.num_heads / p.num_kv_heads;
  const int64_t items_total = static_cast<int64_t>(q_len) * group;
  const int64_t first_item = static_cast<int64_t>(blockIdx.x) * kItems;
  if (first_item >= items_total) return;
  const int64_t first_pos = static_cast<int64_t>(p.seq_lens[b]) - q_len;  // row 0's position
  const int64_t last_item = min(first_item + kItems, items_total) - 1;
  const int64_t kv_end = min(first_pos + last_item / group + 1, TableCapacity(p));

  for (int idx = threadIdx.x; idx < kItems * hd; idx += blockDim.x) {
    const int c = idx / hd, d = idx % hd;
    const int64_t item = first_item + c;
    float val = 0.f;
    if (item < items_total) {
      const int64_t r = item / group, g = item % group;
      val = ToFloat(q[((start + r) * p.num_heads + kvh * group + g) * hd + d]) * p.scale;
    }
    qs[idx] = val;
  }

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float m[kItemsPerWarp], l[kItemsPerWarp], acc[kItemsPerWarp][DPL];
  int64_t pos[kItemsPerWarp];
#pragma unroll
  for (int i = 0; i < kItemsPerWarp; ++i) {
    const int64_t item = first_item + warp * kItemsPerWarp + i;
    pos[i] = item < items_total ? first_pos + item / group : -1;  // -1: every token masked
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int dd = 0; dd < DPL; ++dd) acc[i][dd] = 0.f;
  }

  const int vpt = hd / VEC;
  for (int64_t t0 = 0; t0 < kv_end; t0 += kTile) {
    __syncthreads();  // the previous tile is consumed (and, first time, qs is written)
    for (int idx = threadIdx.x; idx < kTile * vpt; idx += blockDim.x) {
      const int j = idx / vpt, v = idx % vpt;
      const int64_t t = t0 + j;
      const int64_t off = t < kv_end ? KvOffset(p, b, t, kvh) : -1;
      float* kd = kt_s + j * ks + v * VEC;
      float* vd = vt_s + j * ks + v * VEC;
      if (off >= 0) {
        const Vec<T, VEC> kv = LoadVec<T, VEC>(k_cache + off + v * VEC);
        const Vec<T, VEC> vv = LoadVec<T, VEC>(v_cache + off + v * VEC);
#pragma unroll
        for (int e = 0; e < VEC; ++e) {
          kd[e] = ToFloat(kv.v[e]);
          vd[e] = ToFloat(vv.v[e]);
        }
      } else {
#pragma unroll
        for (int e = 0; e < VEC; ++e) {
          kd[e] = 0.f;
          vd[e] = 0.f;
        }
      }
      if (v == 0) tok_ok[j] = off >= 0;
    }
    __syncthreads();

    // Scores: lane j takes token t0 + j for each of the warp's items.
    float s[kItemsPerWarp];
#pragma unroll
    for (int i = 0; i < kItemsPerWarp; ++i) s[i] = 0.f;
    const float* krow = kt_s + lane * ks;
    for (int d = 0; d < hd; d += 4) {
      const float4 kv = *reinterpret_cast<const float4*>(krow + d);
#pragma unroll
      for (int i = 0; i < kItemsPerWarp; ++i) {
        const float4 qv =
            *reinterpret_cast<const float4*>(qs + (warp * kItemsPerWarp + i) * hd + d);
        s[i] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
      }
    }
    const int64_t t = t0 + lane;
    const bool ok = tok_ok[lane] != 0;
    float corr[kItemsPerWarp];
#pragma unroll
    for (int i = 0; i < kItemsPerWarp; ++i) {
      const float si = (ok && t <= pos[i]) ? s[i] : -INFINITY;
      const float m_new = fmaxf(m[i], WarpMax(si));
      const float pr = si == -INFINITY ? 0.f : expf(si - m_new);
      corr[i] = m[i] == -INFINITY ? 0.f : expf(m[i] - m_new);
      l[i] = l[i] * corr[i] + WarpSum(pr);
      m[i] = m_new;
      ps[(warp * kItemsPerWarp + i) * kTile + lane] = pr;
    }
    __syncwarp();

    // acc = acc * corr + sum_j p_j v_j, lane owning dimensions lane + 32 * dd.
#pragma unroll
    for (int i = 0; i < kItemsPerWarp; ++i) {
#pragma unroll
      for (int dd = 0; dd < DPL; ++dd) acc[i][dd] *= corr[i];
    }
    for (int j = 0; j < kTile; j += 4) {
      float4 pj[kItemsPerWarp];
#pragma unroll
      for (int i = 0; i < kItemsPerWarp; ++i) {
        pj[i] = *reinterpret_cast<const float4*>(ps + (warp * kItemsPerWarp + i) * kTile + j);
      }
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        const float* vrow = vt_s + (j + jj) * ks;
#pragma unroll
        for (int dd = 0; dd < DPL; ++dd) {
          const int d = lane + 32 * dd;
          const float vv = d < hd ? vrow[d] : 0.f;
#pragma unroll
          for (int i = 0; i < kItemsPerWarp; ++i) {
            const float w = jj == 0 ? pj[i].x : jj == 1 ? pj[i].y : jj == 2 ? pj[i].z : pj[i].w;
            acc[i][dd] += w * vv;
          }
        }
      }
    }
    __syncwarp();  // ps is rewritten by the next tile
  }

#pragma unroll
  for (int i = 0; i < kItemsPerWarp; ++i) {
    const int64_t item = first_item + warp * kItemsPerWarp + i;
    if (item >= items_total) continue;
    const int64_t r = item / group, g = item % group;
    const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;  // 0: every token masked
    T* o = out + ((start + r) * p.num_heads + kvh * group + g) * hd;
#pragma unroll
    for (int dd = 0; dd < DPL; ++dd) {
      const int d = lane + 32 * dd;
      if (d < hd) o[d] = FromFloat<T>(acc[i][dd] * inv);
    }
  }
}

template <typename T, int DPL, int VEC>
absl::Status Launch(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, Tensor& out,
                    const AttnParams& p, int max_query_len) {
  const size_t smem = SharedBytes(p.head_dim);
  auto* kernel = PrefillKernel<T, DPL, VEC>;
  if (smem > 48 * 1024) {
    CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(smem)));
  }
  const int group = p.num_heads / p.num_kv_heads;
  const int64_t tiles = (static_cast<int64_t>(max_query_len) * group + kItems - 1) / kItems;
  const dim3 grid(static_cast<unsigned>(tiles), p.batch, p.num_kv_heads);
  kernel<<<grid, kThreads, smem, Stream()>>>(q.data_as<const T>(), k_cache.data_as<const T>(),
                                             v_cache.data_as<const T>(), out.data_as<T>(), p);
  CUDA_RETURN_IF_LAUNCH_ERROR("PrefillKernel");
  return absl::OkStatus();
}

template <typename T, int VEC>
absl::Status LaunchForHeadDim(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                              Tensor& out, const AttnParams& p, int max_query_len) {
  if (p.head_dim <= 32) return Launch<T, 1, VEC>(q, k_cache, v_cache, out, p, max_query_len);
  if (p.head_dim <= 64) return Launch<T, 2, VEC>(q, k_cache, v_cache, out, p, max_query_len);
  if (p.head_dim <= 128) return Launch<T, 4, VEC>(q, k_cache, v_cache, out, p, max_query_len);
  return Launch<T, 8, VEC>(q, k_cache, v_cache, out, p, max_query_len);
}

}  // namespace

absl::Status PagedAttentionPrefill(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                   const AttentionMetadata& md, int num_heads, int num_kv_heads,
                                   float scale, Tensor& out) {
  const AttnParams p = MakeAttnParams(q, k_cache, md, num_heads, num_kv_heads, scale);
  if (p.rows == 0 || p.batch == 0 || md.max_query_len < 2) return absl::OkStatus();
  return DispatchFloat(q.dtype(), "PagedAttention", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    constexpr int V = kVec16<T>;
    const bool vec =
        p.head_dim % V == 0 && Aligned(k_cache.data(), 16) && Aligned(v_cache.data(), 16);
    if (vec) return LaunchForHeadDim<T, V>(q, k_cache, v_cache, out, p, md.max_query_len);
    return LaunchForHeadDim<T, 1>(q, k_cache, v_cache, out, p, md.max_query_len);
  });
}

absl::Status PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                            const AttentionMetadata& md, int num_heads, int num_kv_heads,
                            float scale, Tensor& out) {
  const int64_t hd = k_cache.dim(3);
  if (hd % 8 != 0 || hd > 256) {
    return absl::UnimplementedError(
        absl::StrCat("PagedAttention: the CUDA kernels need head_dim % 8 == 0 and head_dim <= "
                     "256, got ",
                     hd));
  }
  if (md.seq_lens.dim(0) > 65535 || num_kv_heads > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("PagedAttention: at most 65535 sequences and KV heads on cuda, got ",
                     md.seq_lens.dim(0), " and ", num_kv_heads));
  }
  RETURN_IF_ERROR(
      PagedAttentionDecode(q, k_cache, v_cache, md, num_heads, num_kv_heads, scale, out));
  return PagedAttentionPrefill(q, k_cache, v_cache, md, num_heads, num_kv_heads, scale, out);
}

}  // namespace tessera::ops::cuda
