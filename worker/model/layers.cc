#include "worker/model/layers.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/device/cuda_device.h"

namespace tessera {

absl::StatusOr<Tensor> PlaceOnDevice(Tensor t, Device device) {
  if (device == t.device()) return t;
  return t.To(device);
}

absl::StatusOr<ColumnParallelLinear> ColumnParallelLinear::Load(
    WeightSource& src, const std::string& prefix, int64_t out_features, int64_t in_features,
    Range rows, bool bias, DType dtype, Device device) {
  ColumnParallelLinear layer;
  ASSIGN_OR_RETURN(Tensor weight, src.Load(prefix + ".weight", {out_features, in_features},
                                           ShardSpec::Rows(rows), dtype));
  ASSIGN_OR_RETURN(layer.weight_, PlaceOnDevice(std::move(weight), device));
  if (bias) {
    ASSIGN_OR_RETURN(Tensor b,
                     src.Load(prefix + ".bias", {out_features}, ShardSpec::Rows(rows), dtype));
    ASSIGN_OR_RETURN(layer.bias_, PlaceOnDevice(std::move(b), device));
    layer.has_bias_ = true;
  }
  return layer;
}

absl::StatusOr<ColumnParallelLinear> ColumnParallelLinear::LoadMerged(
    WeightSource& src, const std::vector<std::string>& prefixes, int64_t out_features,
    int64_t in_features, Range rows, DType dtype, Device device) {
  ColumnParallelLinear layer;
  const int64_t shard = rows.size();
  Tensor merged =
      Tensor::Empty(dtype, {shard * static_cast<int64_t>(prefixes.size()), in_features});
  for (size_t i = 0; i < prefixes.size(); ++i) {
    ASSIGN_OR_RETURN(Tensor part, src.Load(prefixes[i] + ".weight", {out_features, in_features},
                                           ShardSpec::Rows(rows), dtype));
    std::memcpy(static_cast<char*>(merged.data()) + i * part.nbytes(), part.data(), part.nbytes());
  }
  ASSIGN_OR_RETURN(layer.weight_, PlaceOnDevice(std::move(merged), device));
  return layer;
}

absl::Status ColumnParallelLinear::Forward(const Tensor& x, Tensor& out) const {
  return ops::Linear(x, weight_, has_bias_ ? &bias_ : nullptr, out);
}

absl::StatusOr<RowParallelLinear> RowParallelLinear::Load(WeightSource& src,
                                                          const std::string& prefix,
                                                          int64_t out_features, int64_t in_features,
                                                          Range cols, bool bias, int rank,
                                                          DType dtype, Device device) {
  RowParallelLinear layer;
  ASSIGN_OR_RETURN(Tensor weight, src.Load(prefix + ".weight", {out_features, in_features},
                                           ShardSpec::Cols(cols), dtype));
  ASSIGN_OR_RETURN(layer.weight_, PlaceOnDevice(std::move(weight), device));
  if (bias && rank == 0) {
    ASSIGN_OR_RETURN(Tensor b,
                     src.Load(prefix + ".bias", {out_features}, ShardSpec::Full(), dtype));
    ASSIGN_OR_RETURN(layer.bias_, PlaceOnDevice(std::move(b), device));
    layer.has_bias_ = true;
  }
  return layer;
}

absl::Status RowParallelLinear::Forward(const Tensor& x, Communicator& comm, Tensor& out) const {
  RETURN_IF_ERROR(ops::Linear(x, weight_, has_bias_ ? &bias_ : nullptr, out));
  if (comm.size() > 1) RETURN_IF_ERROR(comm.AllReduceSum(out));
  return absl::OkStatus();
}

absl::StatusOr<VocabParallelEmbedding> VocabParallelEmbedding::Load(WeightSource& src,
                                                                    const std::string& name,
                                                                    int64_t vocab_size,
                                                                    int64_t hidden, Range vocab,
                                                                    DType dtype, Device device) {
  VocabParallelEmbedding layer;
  ASSIGN_OR_RETURN(Tensor weight,
                   src.Load(name, {vocab_size, hidden}, ShardSpec::Rows(vocab), dtype));
  ASSIGN_OR_RETURN(layer.weight_, PlaceOnDevice(std::move(weight), device));
  layer.vocab_ = vocab;
  return layer;
}

absl::Status VocabParallelEmbedding::Forward(const Tensor& ids, Communicator& comm,
                                             Tensor& out) const {
  RETURN_IF_ERROR(ops::Embedding(ids, weight_, vocab_.begin, out));
  if (comm.size() > 1) RETURN_IF_ERROR(comm.AllReduceSum(out));
  return absl::OkStatus();
}

absl::StatusOr<ParallelLmHead> ParallelLmHead::Make(Tensor weight, Range vocab, int64_t vocab_size,
                                                    int64_t max_shard) {
  ParallelLmHead head;
  head.vocab_ = vocab;
  head.vocab_size_ = vocab_size;
  head.max_shard_ = max_shard;
  if (weight.device() == Device::kCpu || vocab.size() == max_shard) {
    head.weight_ = std::move(weight);
    return head;
  }
  // Device: one GEMM straight into the [m, max_shard] all-gather buffer.
  ASSIGN_OR_RETURN(head.weight_,
                   Tensor::TryEmpty(weight.dtype(), {max_shard, weight.dim(1)}, weight.device()));
  RETURN_IF_ERROR(ZeroAsync(head.weight_));
  Tensor rows = head.weight_.Slice(0, vocab.size());
  RETURN_IF_ERROR(rows.CopyFrom(weight));
  return head;
}

absl::Status ParallelLmHead::Forward(const Tensor& h, Communicator& comm, Tensor& logits,
                                     Scratch* scratch) const {
  const int64_t m = h.dim(0);
  if (comm.size() == 1) return ops::Linear(h, weight_, nullptr, logits);
  if (h.device() != Device::kCpu) {
    if (scratch == nullptr) {
      return absl::InvalidArgumentError("ParallelLmHead: a device forward at TP > 1 needs scratch");
    }
    // [m, max_shard] per rank -> [world, m, max_shard] -> each rank's columns
    // into its vocabulary range of [m, vocab].
    RETURN_IF_ERROR(ops::Linear(h, weight_, nullptr, scratch->local));
    RETURN_IF_ERROR(comm.AllGather(scratch->local, scratch->gathered));
    for (int r = 0; r < comm.size(); ++r) {
      const Range rv = EvenSplit(vocab_size_, comm.size(), r);
      const Tensor part = scratch->gathered.Slice(r, r + 1).Reshape({m, max_shard_});
      RETURN_IF_ERROR(CopyColumnsAsync(part, 0, logits, rv.begin, rv.size()));
    }
    return absl::OkStatus();
  }

  // Each rank's logits, padded to the largest shard so the all-gather is uniform.
  Tensor local = Tensor::Empty(DType::kFloat32, {m, max_shard_});
  const int64_t shard = vocab_.size();
  if (shard == max_shard_) {
    RETURN_IF_ERROR(ops::Linear(h, weight_, nullptr, local));
  } else {
    Tensor part = Tensor::Empty(DType::kFloat32, {m, shard});
    RETURN_IF_ERROR(ops::Linear(h, weight_, nullptr, part));
    const float* src = part.data_as<float>();
    float* dst = local.data_as<float>();
    for (int64_t i = 0; i < m; ++i) {
      std::memcpy(dst + i * max_shard_, src + i * shard, shard * sizeof(float));
      for (int64_t j = shard; j < max_shard_; ++j) {
        dst[i * max_shard_ + j] = -std::numeric_limits<float>::infinity();
      }
    }
  }
  Tensor gathered = Tensor::Empty(DType::kFloat32, {comm.size(), m, max_shard_});
  RETURN_IF_ERROR(comm.AllGather(local, gathered));
  // [world, m, max_shard] -> [m, vocab]: rank r's columns go to its vocab range.
  const float* g = gathered.data_as<float>();
  float* out = logits.data_as<float>();
  for (int r = 0; r < comm.size(); ++r) {
    const Range rv = EvenSplit(vocab_size_, comm.size(), r);
    for (int64_t i = 0; i < m; ++i) {
      std::memcpy(out + i * vocab_size_ + rv.begin, g + (r * m + i) * max_shard_,
                  rv.size() * sizeof(float));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RmsNormLayer> RmsNormLayer::Load(WeightSource& src, const std::string& name,
                                                int64_t size, float eps, DType dtype,
                                                Device device) {
  RmsNormLayer layer;
  ASSIGN_OR_RETURN(Tensor weight, src.Load(name, {size}, ShardSpec::Full(), dtype));
  ASSIGN_OR_RETURN(layer.weight_, PlaceOnDevice(std::move(weight), device));
  layer.eps_ = eps;
  return layer;
}

}  // namespace tessera
