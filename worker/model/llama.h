// The Llama family's forward pass (Llama 2/3, Mistral without sliding window,
// Qwen2 with q/k/v bias, Qwen3 with q/k RMSNorm): grouped-query attention over
// the paged KV cache, SwiGLU MLP, tied or separate lm_head. The file reads like
// the math; tensor-parallel sharding lives in worker/model/layers.h.
//
// The model runs on the CPU (float32) or on the current CUDA device of the
// thread that loads it (float32, float16 or bfloat16 weights, activations and
// KV cache). On CUDA, activations live in buffers allocated once
// (ReserveActivations) and viewed per step, so a step allocates no device
// memory and a CUDA graph of a step sees the same addresses at every replay.
//
// The weights are immutable after Load; Forward is called by one engine
// thread per rank and writes only the KV cache, the activation buffers and
// its outputs.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/ops.h"
#include "worker/model/kv_cache.h"
#include "worker/model/layers.h"
#include "worker/model/model_config.h"

namespace tessera {

// One step's batch as tensors (views of the step plan's arrays), on the
// model's device.
struct ModelInput {
  Tensor token_ids;     // [n] int32
  Tensor positions;     // [n] int32
  Tensor slot_mapping;  // [n] int64
  ops::AttentionMetadata attn;
  Tensor logits_indices;  // [m] int32: rows whose logits are wanted
};

class LlamaForCausalLM {
 public:
  // Builds the model for rank `comm.rank()` of `comm.size()`, loading only
  // this rank's shard in `dtype` onto `device` (CUDA: the calling thread's
  // current device). The CPU computes in float32 only. Errors name the tensor
  // and the source (missing tensor, shape mismatch), the config field that
  // cannot be split at this TP size, or the dtype/device that cannot run.
  static absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> Load(const ModelConfig& config,
                                                                WeightSource& weights,
                                                                Communicator& comm, DType dtype,
                                                                Device device = Device::kCpu);

  // Runs the batch through the model: stores its K/V in `cache` and writes
  // logits [m, vocab_size] for the rows in input.logits_indices (full rows,
  // on every rank). Every rank of the replica must call it with the same input.
  // `logits`: preallocated [m, vocab_size] of logits_dtype() on the model's
  // device, or undefined: then on CUDA it becomes a view of the model's logits
  // buffer (valid until the next Forward), on the CPU a new tensor.
  // On CUDA the work is only enqueued on the current stream.
  absl::Status Forward(const ModelInput& input, KvCache& cache, Tensor& logits);

  // CUDA: allocates the activation buffers for steps of up to `max_tokens`
  // tokens and `max_logit_rows` logits rows (Forward grows them on demand,
  // which moves them: see activations_generation()). CPU: nothing to do.
  // RESOURCE_EXHAUSTED when the device memory does not suffice.
  absl::Status ReserveActivations(int64_t max_tokens, int64_t max_logit_rows);
  // Bumped whenever the activation buffers move; a CUDA graph captured at an
  // older generation reads stale addresses.
  int64_t activations_generation() const { return acts_generation_; }
  // Device bytes of the weights of this rank.
  int64_t weight_bytes() const { return weight_bytes_; }

  // The cache layout this rank needs for `num_blocks` blocks of `block_size`
  // (in the compute dtype).
  KvCacheShape CacheShape(int64_t num_blocks, int block_size) const;
  const ModelConfig& config() const { return config_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  // float32 on the CPU; on CUDA float32 when the Linear op can write float32
  // from `dtype` inputs, else `dtype`.
  DType logits_dtype() const { return logits_dtype_; }
  Communicator& comm() const { return comm_; }

 private:
  struct Attention {
    ColumnParallelLinear q_proj, k_proj, v_proj;
    RowParallelLinear o_proj;
    RmsNormLayer q_norm, k_norm;  // Qwen3 only
  };
  struct Mlp {
    ColumnParallelLinear gate_up_proj;  // [gate | up] of this rank
    RowParallelLinear down_proj;
  };
  struct DecoderLayer {
    RmsNormLayer input_layernorm;
    Attention self_attn;
    RmsNormLayer post_attention_layernorm;
    Mlp mlp;
  };

  // Activation buffers by role. Token rows: [n, width]; logits rows: [m, width].
  enum Act {
    kHidden,
    kResidual,
    kTmp,
    kQ,
    kK,
    kV,
    kAttn,
    kGateUp,
    kMlpAct,
    kNumTokenActs,  // the ones below have one row per logits row
    kSelected = kNumTokenActs,
    kLocalLogits,  // [m, max_shard] (TP > 1)
    kGathered,     // [world, m, max_shard] (TP > 1)
    kLogits,
    kNumActs
  };

  LlamaForCausalLM(const ModelConfig& config, Communicator& comm) : config_(config), comm_(comm) {}
  absl::Status AttentionForward(int layer, const ModelInput& input, const Tensor& x, KvCache& cache,
                                Tensor& out);
  absl::Status MlpForward(int layer, const Tensor& x, Tensor& out);
  // A [rows, width(act)] activation: a new CPU tensor, or on CUDA a view of
  // the act's buffer (which must hold `rows`: see ReserveActivations).
  Tensor Activation(Act act, int64_t rows) const;
  int64_t ActWidth(Act act) const;
  DType ActDType(Act act) const;

  ModelConfig config_;
  Communicator& comm_;
  DType dtype_ = DType::kFloat32;
  Device device_ = Device::kCpu;
  DType logits_dtype_ = DType::kFloat32;
  int64_t weight_bytes_ = 0;
  // CUDA activation buffers (flat) and their capacity in rows.
  Tensor acts_[kNumActs];
  int64_t token_capacity_ = 0;
  int64_t logit_capacity_ = 0;
  int64_t acts_generation_ = 0;
  TpPartition part_;
  int local_heads_ = 0;     // query heads of this rank
  int local_kv_heads_ = 0;  // KV heads of this rank
  int64_t local_inter_ = 0;
  float attn_scale_ = 1.0f;
  Tensor rope_cache_;

  VocabParallelEmbedding embed_tokens_;
  std::vector<DecoderLayer> layers_;
  RmsNormLayer norm_;
  ParallelLmHead lm_head_;
};

}  // namespace tessera
