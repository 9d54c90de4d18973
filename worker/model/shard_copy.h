// Copying one tensor-parallel shard of a tensor into a Tensor: the shard's
// memory layout in the full tensor, a parallel blockwise walk over it and the
// float32/float16/bfloat16 conversions. Shared by the weight sources
// (worker/model/weight_source.h); not a public interface.
//
// Thread-safety: pure functions; ForEachBlock runs `fn` on OpenMP threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kernels/tensor.h"
#include "worker/model/weight_source.h"

namespace tessera::shard_copy {

// "[2, 3]".
std::string ShapeString(const std::vector<int64_t>& shape);

// OK for the dtypes weights load as (float32, float16, bfloat16);
// INVALID_ARGUMENT naming the tensor otherwise.
absl::Status CheckTargetDType(const std::string& name, DType dtype);

// The shard as `outer` spans of `chunk` contiguous elements: span o starts at
// element src_begin + o * src_stride of the full tensor and at o * chunk of
// the shard.
struct ShardLayout {
  int64_t outer = 1;
  int64_t chunk = 0;
  int64_t src_begin = 0;
  int64_t src_stride = 0;
};

// `shard`'s layout in a tensor of shape `full` (ShardSpec::ShardShape must
// have accepted it).
ShardLayout Layout(const std::vector<int64_t>& full, const ShardSpec& shard);

// Calls fn(src_element, dst_element, n) over the shard in blocks, in parallel
// when the shard is large. fn must be safe to call concurrently on disjoint
// blocks.
template <typename Fn>
void ForEachBlock(const ShardLayout& l, Fn&& fn) {
  constexpr int64_t kBlock = int64_t{1} << 15;
  if (l.chunk == 0 || l.outer == 0) return;
  const int64_t blocks_per_span = (l.chunk + kBlock - 1) / kBlock;
  const int64_t tasks = l.outer * blocks_per_span;
  const bool parallel = l.outer * l.chunk >= (int64_t{1} << 16);
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / blocks_per_span;
    const int64_t b = t % blocks_per_span;
    const int64_t first = b * kBlock;
    const int64_t n = std::min(kBlock, l.chunk - first);
    fn(l.src_begin + o * l.src_stride + first, o * l.chunk + first, n);
  }
}

// Stores n floats as `dtype` (float32, float16 or bfloat16).
void StoreFloats(const float* src, DType dtype, void* dst, int64_t n);

// Converts n elements of a float32/float16/bfloat16 source to `dst_dtype`.
void ConvertElements(const uint8_t* src, DType src_dtype, uint8_t* dst, DType dst_dtype, int64_t n);

}  // namespace tessera::shard_copy
