// Tensor-parallel layer types. Sharding lives here, never in the model file:
// each layer knows which slice of its weights this rank holds, loads exactly
// that slice from a WeightSource, and does the collective its partition needs
// (row-parallel: one all-reduce; vocab-parallel: all-reduce of the embedding,
// all-gather of the logits).
//
// Each Load takes the compute dtype and the device the weights go to: they are
// read and converted on the host (WeightSource), then copied to the device
// once. Forward runs on the tensors' device (kernels/ops.h).
//
// Layers are immutable after Load and safe to call from one engine thread per
// rank; Forward writes only its output arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "worker/comm/communicator.h"
#include "worker/model/model_config.h"
#include "worker/model/partition.h"
#include "worker/model/weight_source.h"

namespace tessera {

// y = x W^T (+ b), W's output rows split across ranks: this rank holds rows
// `rows` of the full [out_features, in_features] weight and produces those
// output columns. No communication.
class ColumnParallelLinear {
 public:
  ColumnParallelLinear() = default;
  // Loads `<prefix>.weight` rows (and `<prefix>.bias` when `bias`).
  static absl::StatusOr<ColumnParallelLinear> Load(WeightSource& src, const std::string& prefix,
                                                   int64_t out_features, int64_t in_features,
                                                   Range rows, bool bias, DType dtype,
                                                   Device device = Device::kCpu);
  // Several weights stacked along the output dimension, each sharded by its
  // own range (e.g. gate_proj and up_proj -> one GEMM whose output is
  // [gate shard | up shard], the layout SiluAndMul expects).
  static absl::StatusOr<ColumnParallelLinear> LoadMerged(WeightSource& src,
                                                         const std::vector<std::string>& prefixes,
                                                         int64_t out_features, int64_t in_features,
                                                         Range rows, DType dtype,
                                                         Device device = Device::kCpu);
  // x [n, in_features]; out [n, out_shard()].
  absl::Status Forward(const Tensor& x, Tensor& out) const;
  int64_t out_shard() const { return weight_.dim(0); }

 private:
  Tensor weight_;  // [out_shard, in_features]
  Tensor bias_;    // [out_shard] or undefined
  bool has_bias_ = false;
};

// y = x W^T with W's input columns split across ranks: this rank holds
// columns `cols` of the full [out_features, in_features] weight, takes the
// matching slice of x and all-reduces the partial sums. An optional bias is
// added by rank 0 only, so the sum holds it once.
class RowParallelLinear {
 public:
  RowParallelLinear() = default;
  static absl::StatusOr<RowParallelLinear> Load(WeightSource& src, const std::string& prefix,
                                                int64_t out_features, int64_t in_features,
                                                Range cols, bool bias, int rank, DType dtype,
                                                Device device = Device::kCpu);
  // x [n, in_shard]; out [n, out_features], summed over ranks.
  absl::Status Forward(const Tensor& x, Communicator& comm, Tensor& out) const;

 private:
  Tensor weight_;  // [out_features, in_shard]
  Tensor bias_;    // [out_features] on rank 0 when the layer has a bias
  bool has_bias_ = false;
};

// Embedding table split by vocabulary rows; each rank looks up the ids it
// holds (zeros elsewhere) and an all-reduce assembles the rows.
class VocabParallelEmbedding {
 public:
  VocabParallelEmbedding() = default;
  static absl::StatusOr<VocabParallelEmbedding> Load(WeightSource& src, const std::string& name,
                                                     int64_t vocab_size, int64_t hidden,
                                                     Range vocab, DType dtype,
                                                     Device device = Device::kCpu);
  // ids [n] int32; out [n, hidden].
  absl::Status Forward(const Tensor& ids, Communicator& comm, Tensor& out) const;
  const Tensor& weight() const { return weight_; }
  Range vocab() const { return vocab_; }

 private:
  Tensor weight_;  // [vocab shard, hidden]
  Range vocab_{0, 0};
};

// logits = h W^T with W split by vocabulary rows (tied to the embedding or a
// separate lm_head); the shards are all-gathered into full rows.
class ParallelLmHead {
 public:
  // Preallocated buffers of a device forward at TP > 1 (views of the model's
  // activation buffers, so CUDA graphs see fixed addresses): local
  // [m, max_shard] and gathered [world, m, max_shard], in the logits' dtype.
  // On the CPU they are allocated per call and may be left undefined.
  struct Scratch {
    Tensor local;
    Tensor gathered;
  };

  ParallelLmHead() = default;
  // `weight` [vocab shard, hidden] on the model's device. On a CUDA device
  // with an uneven split the weight is padded with zero rows to `max_shard`
  // (the padded logits are dropped when the shards are reassembled).
  static absl::StatusOr<ParallelLmHead> Make(Tensor weight, Range vocab, int64_t vocab_size,
                                             int64_t max_shard);
  // h [m, hidden]; logits [m, vocab_size] (full on every rank) of h's device;
  // on CUDA logits may be float32 where the Linear op supports a float32
  // output for h's dtype. `scratch` is required on CUDA at TP > 1.
  absl::Status Forward(const Tensor& h, Communicator& comm, Tensor& logits,
                       Scratch* scratch = nullptr) const;
  int64_t max_shard() const { return max_shard_; }

 private:
  Tensor weight_;  // [vocab shard, hidden] ([max_shard, hidden] padded on CUDA)
  Range vocab_{0, 0};
  int64_t vocab_size_ = 0;
  int64_t max_shard_ = 0;  // the largest rank's shard (uneven splits are padded to it)
};

// A host tensor on `device`: itself for the CPU, else a synchronous copy.
absl::StatusOr<Tensor> PlaceOnDevice(Tensor t, Device device);

// RMSNorm with its [size] weight (replicated on every rank).
class RmsNormLayer {
 public:
  RmsNormLayer() = default;
  static absl::StatusOr<RmsNormLayer> Load(WeightSource& src, const std::string& name, int64_t size,
                                           float eps, DType dtype, Device device = Device::kCpu);
  absl::Status Forward(const Tensor& x, Tensor& out) const {
    return ops::RmsNorm(x, weight_, eps_, out);
  }
  // residual += x; x = norm(residual).
  absl::Status ForwardAdd(Tensor& x, Tensor& residual) const {
    return ops::FusedAddRmsNorm(x, residual, weight_, eps_);
  }

 private:
  Tensor weight_;
  float eps_ = 1e-5f;
};

}  // namespace tessera
