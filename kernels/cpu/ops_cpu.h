// CPU (float32, OpenMP + OpenBLAS) implementations of the operations in
// kernels/ops.h. Callers go through tessera::ops, which validates shapes,
// dtypes and devices first: these functions assume CPU float32 tensors of the
// shapes ops.h documents. What they still check is what only the data can say
// (indices, positions, slots, block tables), so that no input can make them
// read or write out of bounds; such errors are INVALID_ARGUMENT naming the op.
// Thread-safety: each call touches only its arguments; calls from different
// threads may run concurrently (OpenBLAS and OpenMP are re-entrant), though
// they then share the cores.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace tessera::ops::cpu {

// Threads for the OpenMP regions and OpenBLAS. n <= 0: hardware concurrency.
// Stored process-wide, so it applies to whichever thread runs the ops.
void SetThreads(int n);
int NumThreads();
// Linear through LinearBatchInvariant (linear_invariant.h) instead of
// OpenBLAS. Process-wide, like SetThreads.
void SetBatchInvariant(bool on);

// Work (in rough multiply-adds) under which a loop runs on the calling thread:
// spawning an OpenMP team costs a few microseconds, more than a small op.
inline constexpr int64_t kMinParallelWork = 1 << 15;

void Embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out);
void RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);
void FusedAddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps);
void Linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out);
void SiluAndMul(const Tensor& x, Tensor& out);

// The rotary inverse frequencies inv_freq[j], j < head_dim / 2, computed in
// double exactly as Hugging Face transformers does (default, "linear" and
// "llama3" rope types). head_dim must be even and positive.
std::vector<double> RopeInvFreq(int head_dim, double theta, const RopeScaling& scaling);
// See ops::BuildRopeCache. Returns an undefined Tensor when head_dim is not a
// positive even number or max_positions is negative.
Tensor BuildRopeCache(int head_dim, int64_t max_positions, double theta,
                      const RopeScaling& scaling);

// Fail when a position / slot / index / block id is out of range.
absl::Status ApplyRope(const Tensor& positions, Tensor& q, Tensor& k, int head_dim,
                       const Tensor& cos_sin);
absl::Status KvStore(const Tensor& k, const Tensor& v, const Tensor& slot_mapping, Tensor& k_cache,
                     Tensor& v_cache);
absl::Status GatherRows(const Tensor& x, const Tensor& indices, Tensor& out);

// Also checks the metadata: query_start_loc starts at 0, never decreases and
// ends at or before q.dim(0) (rows past it, e.g. padding, are set to zero);
// each sequence has 1 <= q_len <= seq_len <= block_tables.dim(1) * block_size
// unless q_len == 0; its used block ids are in [0, num_blocks); max_query_len
// and max_seq_len are at least the real maxima (the CUDA path sizes its grid
// with them).
absl::Status PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                            const AttentionMetadata& md, int num_heads, int num_kv_heads,
                            float scale, Tensor& out);

}  // namespace tessera::ops::cpu
