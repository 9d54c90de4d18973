// The operations a Llama-family forward pass needs. Each op validates shapes,
// dtypes and devices (INVALID_ARGUMENT naming the op and the tensor otherwise)
// and dispatches to the implementation for the tensors' device: kernels/cpu/
// (float32, multi-threaded, always built) or kernels/cuda/ (when built).
// All tensors of one call must be on the same device. Outputs are
// preallocated by the caller. Thread-safety: ops touch only their arguments;
// the CPU implementations parallelise internally (see SetCpuThreads).
//
// Shapes use n = tokens in the batch, h = hidden size, nh / nkv = query / KV
// heads (of this rank's shard), hd = head dim, B = sequences in the batch.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/tensor.h"

namespace tessera::ops {

// Threads the CPU implementations (OpenMP and OpenBLAS) may use. 0 = all cores.
void SetCpuThreads(int n);

// out[i, :] = table[ids[i] - vocab_start, :] when vocab_start <= ids[i] <
// vocab_start + table.dim(0), else zeros (vocab-parallel embedding: the shards
// are summed by an all-reduce afterwards).
// ids [n] int32; table [v_shard, h]; out [n, h].
absl::Status Embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out);

// out = x / sqrt(mean(x^2) + eps) * weight, row by row. x, out [rows, h]
// (out may be x); weight [h]. Also used per head (q/k norm) on [n*heads, hd].
absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);

// residual += x; x = RmsNorm(residual) * weight. x, residual [n, h]; weight [h].
absl::Status FusedAddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps);

// out = x @ w^T (+ bias). x [n, k]; w [m, k]; bias [m] or nullptr; out [n, m].
absl::Status Linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out);

// Llama-3 style frequency scaling ("rope_scaling": {"rope_type": "llama3", ...}).
struct RopeScaling {
  enum class Type { kNone, kLlama3, kLinear };
  Type type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

// Builds the rotary table [max_positions, head_dim] float32 on the CPU: row p
// holds cos(p * inv_freq[j]) for j < hd/2, then sin(p * inv_freq[j]).
// inv_freq[j] = theta^(-2j/hd), adjusted by `scaling`.
Tensor BuildRopeCache(int head_dim, int64_t max_positions, double theta,
                      const RopeScaling& scaling);

// Rotates q and k in place, rotate-half (NeoX / Hugging Face Llama) layout:
// for each head, (x1, x2) = (x[:hd/2], x[hd/2:]) becomes
// (x1*cos - x2*sin, x2*cos + x1*sin) at the token's position.
// positions [n] int32; q [n, nh*hd]; k [n, nkv*hd]; cos_sin [max_pos, hd].
absl::Status ApplyRope(const Tensor& positions, Tensor& q, Tensor& k, int head_dim,
                       const Tensor& cos_sin);

// Writes token i's key/value into the paged cache at slot_mapping[i]
// (slot = block * block_size + offset); slot -1 means skip.
// k, v [n, nkv*hd]; slot_mapping [n] int64;
// k_cache, v_cache [num_blocks, block_size, nkv, hd].
absl::Status KvStore(const Tensor& k, const Tensor& v, const Tensor& slot_mapping, Tensor& k_cache,
                     Tensor& v_cache);

// Describes a batch of sequences for PagedAttention. Sequence b owns query rows
// [query_start_loc[b], query_start_loc[b+1]) and has seq_lens[b] tokens of
// context after this step (prefix already cached + the new ones), whose K/V are
// all in the cache (KvStore runs first). Its KV blocks are block_tables[b, :].
struct AttentionMetadata {
  Tensor query_start_loc;  // [B + 1] int32
  Tensor seq_lens;         // [B] int32
  Tensor block_tables;     // [B, max_blocks_per_seq] int32
  int max_query_len = 0;
  int max_seq_len = 0;
};

// Causal attention over the paged cache for a batch that mixes prefill chunks
// and decodes: query row i of sequence b sits at position
// p = seq_lens[b] - q_len_b + i and attends to positions [0, p].
// Grouped-query: query head j uses KV head j / (nh / nkv).
// q, out [n, nh*hd]; k_cache, v_cache [num_blocks, block_size, nkv, hd].
absl::Status PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                            const AttentionMetadata& md, int num_heads, int num_kv_heads,
                            float scale, Tensor& out);

// out = silu(x[:, :I]) * x[:, I:]. x [n, 2I] (gate then up); out [n, I].
absl::Status SiluAndMul(const Tensor& x, Tensor& out);

// out[j, :] = x[indices[j], :]. x [n, h]; indices [m] int32; out [m, h].
// Selects the rows whose logits are needed.
absl::Status GatherRows(const Tensor& x, const Tensor& indices, Tensor& out);

}  // namespace tessera::ops
