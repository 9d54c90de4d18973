// The paged KV cache of one rank: per layer, a key and a value tensor of
// [num_blocks, block_size, kv_heads of this rank, head_dim]. Block ids are the
// BlockManager's; this type only owns the memory. Not thread-safe: the engine
// thread of its rank writes it through the ops. CPU memory starts
// uninitialised (pages are committed as blocks are first written): attention
// only reads slots that KvStore wrote. CUDA memory (TryAllocate) is zeroed
// once, so the padding rows of a CUDA-graph decode, which read block 0, see
// finite values.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/tensor.h"
#include "worker/device/cuda_device.h"

namespace tessera {

struct KvCacheShape {
  int num_layers = 0;
  int64_t num_blocks = 0;
  int block_size = 0;
  int num_kv_heads = 0;  // this rank's shard
  int head_dim = 0;
  DType dtype = DType::kFloat32;

  // Bytes one block takes over all layers, keys and values.
  size_t bytes_per_block() const {
    return size_t{2} * num_layers * block_size * num_kv_heads * head_dim * DTypeSize(dtype);
  }
};

class KvCache {
 public:
  KvCache() = default;
  static KvCache Allocate(const KvCacheShape& shape, Device device = Device::kCpu) {
    KvCache c;
    c.shape_ = shape;
    for (int l = 0; l < shape.num_layers; ++l) {
      const std::vector<int64_t> dims = {shape.num_blocks, shape.block_size, shape.num_kv_heads,
                                         shape.head_dim};
      c.k_.push_back(Tensor::Empty(shape.dtype, dims, device));
      c.v_.push_back(Tensor::Empty(shape.dtype, dims, device));
    }
    return c;
  }
  // Allocate that reports a failure (RESOURCE_EXHAUSTED when the device is
  // out of memory) instead of aborting; CUDA memory is zeroed.
  static absl::StatusOr<KvCache> TryAllocate(const KvCacheShape& shape, Device device) {
    KvCache c;
    c.shape_ = shape;
    const std::vector<int64_t> dims = {shape.num_blocks, shape.block_size, shape.num_kv_heads,
                                       shape.head_dim};
    for (int l = 0; l < shape.num_layers; ++l) {
      for (std::vector<Tensor>* side : {&c.k_, &c.v_}) {
        absl::StatusOr<Tensor> t = Tensor::TryEmpty(shape.dtype, dims, device);
        if (!t.ok()) return t.status();
        if (device == Device::kCuda) {
          if (absl::Status s = ZeroAsync(*t); !s.ok()) return s;
        }
        side->push_back(*std::move(t));
      }
    }
    if (device == Device::kCuda) {
      if (absl::Status s = SynchronizeCurrentStream(); !s.ok()) return s;
    }
    return c;
  }
  Tensor& k(int layer) { return k_[layer]; }
  Tensor& v(int layer) { return v_[layer]; }
  const KvCacheShape& shape() const { return shape_; }

 private:
  KvCacheShape shape_;
  std::vector<Tensor> k_, v_;
};

}  // namespace tessera
