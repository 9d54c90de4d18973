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
//
// On CUDA (kernels/cuda/, when built): floating tensors may be float32,
// float16 or bfloat16 (one dtype per call; float32 accumulation inside);
// the rotary table cos_sin stays float32; the ops are enqueued on the calling
// thread's current stream (tensor.h: CurrentCudaStream()) and return without
// waiting, so a kernel fault shows up at the next synchronising call. A CUDA
// or cuBLAS error becomes a Status naming the call and the code, e.g.
// "cudaLaunchKernel failed: cudaErrorInvalidValue (1): invalid argument".
// Data-dependent checks (ids, positions, slots, indices, block tables) cannot
// be made on the host without a device->host copy, so on CUDA the kernels
// only make bad values harmless, as each op says; they never read or write
// out of bounds. Ops that need scratch memory (PagedAttention for decodes,
// Linear's cuBLASLt workspace) keep it per device and stream and grow it on
// demand: run one step with the largest shapes before capturing a CUDA graph
// (ScratchGeneration below says when a captured graph went stale).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/tensor.h"

namespace tessera::ops {

// Threads the CPU implementations (OpenMP and OpenBLAS) may use. 0 = all cores.
void SetCpuThreads(int n);

// Batch-invariant CPU kernels (the worker's --batch-invariant): each output
// row of every CPU op is then computed the same way whatever else is in the
// batch (Linear is the one op whose OpenBLAS path is not), so a sequence's
// tokens do not depend on its batch-mates, chunking or prefix-cache hits.
// Slower prefill (no packed GEMM). Process-wide; the CUDA path is not
// batch-invariant yet.
void SetCpuBatchInvariant(bool on);

// out[i, :] = table[ids[i] - vocab_start, :] when vocab_start <= ids[i] <
// vocab_start + table.dim(0), else zeros (vocab-parallel embedding: the shards
// are summed by an all-reduce afterwards).
// ids [n] int32; table [v_shard, h]; out [n, h].
// CUDA: same (ids outside the shard, including bad ones, give zero rows).
absl::Status Embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out);

// out = x / sqrt(mean(x^2) + eps) * weight, row by row. x, out [rows, h]
// (out may be x); weight [h]. Also used per head (q/k norm) on [n*heads, hd].
absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);

// residual += x; x = RmsNorm(residual) * weight. x, residual [n, h]; weight [h].
absl::Status FusedAddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps);

// out = x @ w^T (+ bias). x [n, k]; w [m, k]; bias [m] or nullptr; out [n, m].
// x, w and bias share one dtype; out has it too, or is float32 without a bias
// (CUDA: float16/bfloat16 inputs writing float32, e.g. the lm_head's logits,
// rounded once from the float32 accumulator).
// CUDA: cuBLASLt, float32 accumulation; float32 tensors use the full-precision
// float32 path (no TF32). Handles, workspaces and algorithm choices are cached
// per device/stream and shape.
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
// CUDA: cos_sin must be float32 on the device (upload BuildRopeCache's table
// with Tensor::To); a position outside [0, max_pos) leaves its row unrotated.
absl::Status ApplyRope(const Tensor& positions, Tensor& q, Tensor& k, int head_dim,
                       const Tensor& cos_sin);

// Writes token i's key/value into the paged cache at slot_mapping[i]
// (slot = block * block_size + offset); slot -1 means skip.
// k, v [n, nkv*hd]; slot_mapping [n] int64;
// k_cache, v_cache [num_blocks, block_size, nkv, hd].
// CUDA: a slot outside [-1, num_blocks * block_size) is skipped like -1.
absl::Status KvStore(const Tensor& k, const Tensor& v, const Tensor& slot_mapping, Tensor& k_cache,
                     Tensor& v_cache);

// ApplyRope then KvStore in one op (one fused kernel on CUDA): rotates q and k
// in place, then writes the rotated k and v to the cache at slot_mapping.
// Shapes, dtypes and per-device behaviour as the two ops above; k and v share
// the cache's shape [n, nkv*hd] with hd = head_dim = k_cache.dim(3). On the
// CPU it is exactly ApplyRope followed by KvStore (so a bad slot is reported
// after q and k were rotated).
absl::Status RopeAndKvStore(const Tensor& positions, Tensor& q, Tensor& k, const Tensor& v,
                            int head_dim, const Tensor& cos_sin, const Tensor& slot_mapping,
                            Tensor& k_cache, Tensor& v_cache);

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
  // The number of sequences with exactly one query row (decodes), or -1 when
  // the caller does not count them. 0 tells the CUDA path to launch no decode
  // kernels (and take no decode scratch): it then requires every query row to
  // belong to a sequence (query_start_loc[B] == n), since the decode reduce is
  // what zeroes padding rows. The CPU checks a count >= 0 against the batch.
  int num_decodes = -1;
};

// Causal attention over the paged cache for a batch that mixes prefill chunks
// and decodes: query row i of sequence b sits at position
// p = seq_lens[b] - q_len_b + i and attends to positions [0, p].
// Grouped-query: query head j uses KV head j / (nh / nkv).
// q, out [n, nh*hd]; k_cache, v_cache [num_blocks, block_size, nkv, hd].
// CUDA: needs hd % 8 == 0 and hd <= 256 (UNIMPLEMENTED otherwise), and
// md.max_seq_len >= every seq_lens[b] (it sizes the split-K grid: a context
// beyond it would be cut). Decodes (q_len == 1) run split-K flash-decoding
// (the context in chunks of kDecodePartitionTokens, then a reduce); prefill
// chunks (q_len > 1) a tiled kernel over the cached prefix and the chunk.
// Bad metadata cannot fault: seq_lens are clamped to the block table, tokens
// in blocks outside [0, num_blocks) are masked out, and a row whose context is
// all masked gets zeros.
absl::Status PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                            const AttentionMetadata& md, int num_heads, int num_kv_heads,
                            float scale, Tensor& out);

// out = silu(x[:, :I]) * x[:, I:]. x [n, 2I] (gate then up); out [n, I].
absl::Status SiluAndMul(const Tensor& x, Tensor& out);

// out[j, :] = x[indices[j], :]. x [n, h]; indices [m] int32; out [m, h].
// Selects the rows whose logits are needed.
// CUDA: an index outside [0, n) gives a zero row.
absl::Status GatherRows(const Tensor& x, const Tensor& indices, Tensor& out);

// Tokens per split-K partition of the CUDA decode attention.
inline constexpr int kDecodePartitionTokens = 512;

// CUDA: changes whenever an op's grow-on-demand device scratch (the decode
// attention's split-K partials) of the current device and the calling
// thread's current stream moves to a new allocation, which frees the old
// one. A CUDA graph captured on that stream at another value may read freed
// memory and must not be replayed. Always 0 without the CUDA path.
// Thread-safe.
int64_t ScratchGeneration();

// ---- Sampling ----------------------------------------------------------------

// Per-row sampling parameters for Sample, as tensors on the logits' device
// (fill host tensors, then CopyFrom into persistent device buffers, so the
// step can be a CUDA graph). Each is [n], n = logits.dim(0).
struct SamplingTensors {
  Tensor temperature;  // float32; < 1e-5 (or NaN) = greedy
  Tensor top_k;        // int32; <= 0 or >= vocab = off
  Tensor top_p;        // float32; >= 1 (or NaN) = off; <= 0 keeps only the best token
  Tensor min_p;        // float32; <= 0 (or NaN) = off; > 1 acts as 1
  Tensor seed;         // int64 (the uint64 seed's bits)
  Tensor step;         // int64: index of the token being sampled in its sequence
};

// The uniform double in [0, 1) that Sample uses for row (seed, step): output
// `step` of the splitmix64 stream seeded with `seed` — the same function as
// worker/sampler.h's SamplerUniform, so both samplers draw the same number.
double SampleUniform(uint64_t seed, int64_t step);

// Picks one token per row of `logits` and returns the chosen token's logprob.
// logits [n, vocab] (float32 on the CPU; float32, float16 or bfloat16 on CUDA;
// 1 <= vocab <= 2^23); tokens [n] int32 and logprobs [n] float32 (outputs);
// params as SamplingTensors. Per row (no penalties: apply them to the logits
// first if needed):
//   1. NaN logits count as -inf, +inf as the largest finite float.
//   2. Greedy (temperature < 1e-5): the argmax, ties to the lowest id.
//   3. Otherwise, with weights w_i = exp((x_i - max) / temperature) (the best
//      token has weight 1) and the tokens ordered by logit, high to low, ties
//      by lower id: top-k keeps the first k; top-p then keeps the shortest
//      prefix of those whose weight sum is >= top_p times theirs; min-p then
//      keeps the tokens with w_i >= min_p (a prefix too). One uniform
//      u = SampleUniform(seed, step) picks, in id order over the kept set,
//      the first token whose running weight sum exceeds u * (kept sum).
//      Weights are summed and compared as 40-bit fixed point (w * 2^40
//      rounded to an integer), so the pick is exact and does not depend on
//      summation order, thread count or the other rows of the batch; a token
//      lighter than 2^-41 of the best is never drawn.
//   4. logprobs[i] = log-softmax of the (cleaned) logits at the chosen token,
//      before temperature and truncation (as worker/sampler.h). A row whose
//      logits are all -inf/NaN yields token 0 with logprob -inf.
// CPU and CUDA implement the same rule with the same arithmetic
// (kernels/sampling_rule.h: a weight's exp() is computed there, bit-identical
// on host and device), so for the same logits they pick the same token; only
// the logprob's float rounding may differ.
absl::Status Sample(const Tensor& logits, const SamplingTensors& params, Tensor& tokens,
                    Tensor& logprobs);

}  // namespace tessera::ops
