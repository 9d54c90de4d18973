// CUDA implementations of the operations in kernels/ops.h (float32, float16
// and bfloat16; float32 accumulation). Callers go through tessera::ops, which
// validates shapes, dtypes and devices first: these functions assume CUDA
// tensors of the shapes and one floating dtype as ops.h documents. They
// enqueue work on the calling thread's current stream (CurrentCudaStream())
// and return without waiting; errors are the CUDA / cuBLAS call's Status
// (kernels/cuda/cuda_check.h). Data on the device is not inspected on the
// host: bad ids, slots, positions and block ids are made harmless in the
// kernels as ops.h says.
// Thread-safety: calls from different threads are safe (per-stream caches are
// locked); work on one stream runs in the order it was enqueued.
// This header has no CUDA types; it is only compiled in with the CUDA path.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace tessera::ops::cuda {

absl::Status Embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out);
absl::Status GatherRows(const Tensor& x, const Tensor& indices, Tensor& out);
absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);
absl::Status FusedAddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps);
absl::Status Linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out);
absl::Status SiluAndMul(const Tensor& x, Tensor& out);
absl::Status ApplyRope(const Tensor& positions, Tensor& q, Tensor& k, int head_dim,
                       const Tensor& cos_sin);
absl::Status KvStore(const Tensor& k, const Tensor& v, const Tensor& slot_mapping, Tensor& k_cache,
                     Tensor& v_cache);
absl::Status RopeAndKvStore(const Tensor& positions, Tensor& q, Tensor& k, const Tensor& v,
                            int head_dim, const Tensor& cos_sin, const Tensor& slot_mapping,
                            Tensor& k_cache, Tensor& v_cache);

// PagedAttention runs three kernels: the split-K decode kernel and its reduce
// (sequences with one query row) and the tiled prefill kernel (sequences with
// more). Both halves are also callable alone for tests and benchmarks.
absl::Status PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                            const AttentionMetadata& md, int num_heads, int num_kv_heads,
                            float scale, Tensor& out);
// Writes the rows of sequences with q_len == 1 and zeroes padding rows;
// launches nothing when md.num_decodes == 0.
absl::Status PagedAttentionDecode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                  const AttentionMetadata& md, int num_heads, int num_kv_heads,
                                  float scale, Tensor& out);
// Writes the rows of sequences with q_len > 1.
absl::Status PagedAttentionPrefill(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                   const AttentionMetadata& md, int num_heads, int num_kv_heads,
                                   float scale, Tensor& out);

absl::Status Sample(const Tensor& logits, const SamplingTensors& params, Tensor& tokens,
                    Tensor& logprobs);

}  // namespace tessera::ops::cuda
