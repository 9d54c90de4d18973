// The Llama family's forward pass (Llama 2/3, Mistral without sliding window,
// Qwen2 with q/k/v bias, Qwen3 with q/k RMSNorm): grouped-query attention over
// the paged KV cache, SwiGLU MLP, tied or separate lm_head. The file reads like
// the math; tensor-parallel sharding lives in worker/model/layers.h.
//
// Immutable after Load; Forward is called by one engine thread per rank and
// writes only the KV cache and its outputs.
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

// One step's batch as tensors (views of the step plan's arrays).
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
  // this rank's shard. Errors name the tensor and the source (missing tensor,
  // shape mismatch) or the config field that cannot be split at this TP size.
  static absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> Load(const ModelConfig& config,
                                                                WeightSource& weights,
                                                                Communicator& comm, DType dtype);

  // Runs the batch through the model: stores its K/V in `cache` and writes
  // logits [m, vocab_size] for the rows in input.logits_indices (full rows,
  // on every rank). Every rank of the replica must call it with the same input.
  absl::Status Forward(const ModelInput& input, KvCache& cache, Tensor& logits);

  // The cache layout this rank needs for `num_blocks` blocks of `block_size`.
  KvCacheShape CacheShape(int64_t num_blocks, int block_size) const;
  const ModelConfig& config() const { return config_; }

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

  LlamaForCausalLM(const ModelConfig& config, Communicator& comm) : config_(config), comm_(comm) {}
  absl::Status AttentionForward(int layer, const ModelInput& input, const Tensor& x, KvCache& cache,
                                Tensor& out);
  absl::Status MlpForward(int layer, const Tensor& x, Tensor& out);

  ModelConfig config_;
  Communicator& comm_;
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
