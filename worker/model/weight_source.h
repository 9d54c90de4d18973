// WeightSource: where a model's layers get their weights, one (sharded)
// tensor at a time: a directory of safetensors files, or deterministic dummy
// weights for `--dummy` presets.
//
// Each rank asks only for its own shard (ShardSpec) and only that part is
// copied and converted: rows [begin, end) of a row shard, those columns of each
// row of a column shard. With memory-mapped files, only the touched pages are
// read from disk.
//
// Dummy weights (MakeDummyWeightSource) are a pure function of (seed, tensor
// name, full shape, flat index in the FULL tensor), so a rank's shard at any
// tensor-parallel size equals the same slice of the TP=1 tensor:
//   key   = splitmix64(seed) ^ XXH3_64(name)
//   bits  = splitmix64(key + flat_index * 0x9e3779b97f4a7c15)  (counter-based)
//   u     = top 24 bits of `bits` mapped to [-1, 1)  (uniform, std 1/sqrt(3))
//   value = by name and shape:
//     name contains "norm"        1 + 0.05 u        (RMSNorm gains, q/k norms)
//     name ends in ".bias"        0.02 u
//     name contains "embed_tokens" sqrt(3) u        (std 1)
//     "lm_head.weight"            sqrt(3)/sqrt(in) u  (std 1/sqrt(in): O(1) logits)
//     other tensors of rank >= 2  0.5 sqrt(3)/sqrt(in) u  (std 0.5/sqrt(in),
//                                  in = last dimension) so that a 30-layer
//                                  residual stream stays O(1)
//     other 1-D tensors           0.02 u
//
// Thread-safety: implementations are safe for concurrent Load/Has/Describe
// calls (they only read immutable state); Load parallelises internally with
// OpenMP.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/tensor.h"
#include "worker/model/partition.h"

namespace tessera {

// Which part of a tensor this rank loads: the whole tensor (dim == -1), or
// indices [begin, end) along dimension `dim` (0: rows, 1: columns), keeping all
// other dimensions whole.
struct ShardSpec {
  int dim = -1;
  int64_t begin = 0;
  int64_t end = 0;

  static ShardSpec Full() { return ShardSpec{}; }
  static ShardSpec Rows(Range r) { return ShardSpec{0, r.begin, r.end}; }
  static ShardSpec Cols(Range r) { return ShardSpec{1, r.begin, r.end}; }

  // The shape of the shard of a tensor of shape `full`. INVALID_ARGUMENT when
  // the shard does not fit (dim >= rank of the tensor, or begin/end outside
  // [0, full[dim]], or end < begin).
  absl::StatusOr<std::vector<int64_t>> ShardShape(const std::vector<int64_t>& full) const;
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;

  // Loads tensor `name`, whose full shape must equal `full_shape`
  // (INVALID_ARGUMENT naming the file, the tensor, the expected and the actual
  // shape otherwise), and returns the part described by `shard`, converted to
  // `dtype` (float32, float16 or bfloat16; sources F32, F16, BF16), as an
  // owning CPU tensor. NOT_FOUND naming the tensor and the files searched when
  // it is absent; INVALID_ARGUMENT for an unsupported dtype or a bad shard.
  virtual absl::StatusOr<Tensor> Load(const std::string& name,
                                      const std::vector<int64_t>& full_shape,
                                      const ShardSpec& shard, DType dtype) = 0;
  // Whether Load can find `name` (the dummy source makes up every name, so
  // callers decide from the ModelConfig which tensors exist).
  virtual bool Has(const std::string& name) const = 0;
  // For messages: the directory, or "dummy weights (seed N)".
  virtual std::string Describe() const = 0;
};

// The safetensors of a Hugging Face model directory: `model.safetensors`; or
// the shards listed by `model.safetensors.index.json` ({"weight_map": {tensor:
// file}}); or else every `*.safetensors` file in the directory. All files are
// mapped and validated here. NOT_FOUND when there are none; DATA_LOSS /
// INVALID_ARGUMENT naming the file for a corrupt file or index (including a
// tensor the index places in a file that lacks it, or a tensor in two files).
absl::StatusOr<std::unique_ptr<WeightSource>> OpenSafetensorsDir(const std::string& model_dir);

// Deterministic made-up weights (scheme above).
std::unique_ptr<WeightSource> MakeDummyWeightSource(uint64_t seed);

}  // namespace tessera
