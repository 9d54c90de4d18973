// What the paged-attention kernels share: the batch description as the
// kernels see it, the row -> sequence lookup and the paged KV addressing.
// The cache layout is the CPU's: [num_blocks, block_size, nkv, hd], token t of
// a sequence in block block_tables[b, t / block_size] at offset
// t % block_size. CUDA-only; header-only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::ops::cuda {

struct AttnParams {
  const int32_t* query_start_loc = nullptr;  // [batch + 1]
  const int32_t* seq_lens = nullptr;         // [batch]
  const int32_t* block_tables = nullptr;     // [batch, max_blocks]
  int batch = 0;
  int max_blocks = 0;
  int num_blocks = 0;
  int block_size = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int64_t rows = 0;  // q.dim(0)
  float scale = 1.f;
};

// The sequence owning query row `row` (query_start_loc[b] <= row <
// query_start_loc[b + 1]), or -1 for a padding row past the last sequence.
__device__ __forceinline__ int FindSeq(const AttnParams& p, int64_t row) {
  const int32_t* qsl = p.query_start_loc;
  if (row < qsl[0] || row >= qsl[p.batch]) return -1;
  int lo = 0, hi = p.batch;  // upper_bound over qsl[0..batch]: first j with qsl[j] > row
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (qsl[mid] <= row) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo - 1;
}

// Number of context tokens the sequence's block table can hold.
__device__ __forceinline__ int64_t TableCapacity(const AttnParams& p) {
  return static_cast<int64_t>(p.max_blocks) * p.block_size;
}

// Element offset of token t's K/V row for KV head `kvh` of sequence b, or -1
// when its block id is outside [0, num_blocks). Requires 0 <= t < capacity.
__device__ __forceinline__ int64_t KvOffset(const AttnParams& p, int b, int64_t t, int kvh) {
  const int32_t block = p.block_tables[static_cast<int64_t>(b) * p.max_blocks + t / p.block_size];
  if (block < 0 || block >= p.num_blocks) return -1;
  return ((static_cast<int64_t>(block) * p.block_size + t % p.block_size) * p.num_kv_heads + kvh) *
         p.head_dim;
}

}  // namespace tessera::ops::cuda

// ---- host side ----------------------------------------------------------------
#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace tessera::ops::cuda {

inline AttnParams MakeAttnParams(const Tensor& q, const Tensor& k_cache,
                                 const AttentionMetadata& md, int num_heads, int num_kv_heads,
                                 float scale) {
  AttnParams p;
  p.query_start_loc = md.query_start_loc.data_as<const int32_t>();
  p.seq_lens = md.seq_lens.data_as<const int32_t>();
  p.block_tables = md.block_tables.data_as<const int32_t>();
  p.batch = static_cast<int>(md.seq_lens.dim(0));
  p.max_blocks = static_cast<int>(md.block_tables.dim(1));
  p.num_blocks = static_cast<int>(k_cache.dim(0));
  p.block_size = static_cast<int>(k_cache.dim(1));
  p.num_heads = num_heads;
  p.num_kv_heads = num_kv_heads;
  p.head_dim = static_cast<int>(k_cache.dim(3));
  p.rows = q.dim(0);
  p.scale = scale;
  return p;
}

}  // namespace tessera::ops::cuda
