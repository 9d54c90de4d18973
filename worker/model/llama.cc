#include "worker/model/llama.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tessera {

absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> LlamaForCausalLM::Load(const ModelConfig& config,
                                                                         WeightSource& weights,
                                                                         Communicator& comm,
                                                                         DType dtype) {
  RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<LlamaForCausalLM> m(new LlamaForCausalLM(config, comm));
  ASSIGN_OR_RETURN(m->part_, PartitionForRank(config, comm.size(), comm.rank()));
  const TpPartition& p = m->part_;
  const int64_t hidden = config.hidden_size;
  const int64_t hd = config.head_dim;
  const int64_t heads = config.num_attention_heads;
  const int64_t kv_heads = config.num_key_value_heads;
  const int64_t inter = config.intermediate_size;
  const float eps = static_cast<float>(config.rms_norm_eps);
  m->local_heads_ = static_cast<int>(p.q_heads.size());
  m->local_kv_heads_ = static_cast<int>(p.kv_heads.size());
  m->local_inter_ = p.intermediate.size();
  m->attn_scale_ = 1.0f / std::sqrt(static_cast<float>(hd));
  m->rope_cache_ = ops::BuildRopeCache(static_cast<int>(hd), config.max_position_embeddings,
                                       config.rope_theta, config.rope_scaling);

  const Range q_rows{p.q_heads.begin * hd, p.q_heads.end * hd};
  const Range kv_rows{p.kv_heads.begin * hd, p.kv_heads.end * hd};

  ASSIGN_OR_RETURN(m->embed_tokens_,
                   VocabParallelEmbedding::Load(weights, "model.embed_tokens.weight",
                                                config.vocab_size, hidden, p.vocab, dtype));
  m->layers_.resize(config.num_hidden_layers);
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    DecoderLayer& L = m->layers_[i];
    const std::string pre = absl::StrCat("model.layers.", i, ".");
    const std::string attn = pre + "self_attn.";
    const bool bias = config.attention_bias;
    ASSIGN_OR_RETURN(L.input_layernorm, RmsNormLayer::Load(weights, pre + "input_layernorm.weight",
                                                           hidden, eps, dtype));
    ASSIGN_OR_RETURN(L.self_attn.q_proj,
                     ColumnParallelLinear::Load(weights, attn + "q_proj", heads * hd, hidden,
                                                q_rows, bias, dtype));
    ASSIGN_OR_RETURN(L.self_attn.k_proj,
                     ColumnParallelLinear::Load(weights, attn + "k_proj", kv_heads * hd, hidden,
                                                kv_rows, bias, dtype));
    ASSIGN_OR_RETURN(L.self_attn.v_proj,
                     ColumnParallelLinear::Load(weights, attn + "v_proj", kv_heads * hd, hidden,
                                                kv_rows, bias, dtype));
    ASSIGN_OR_RETURN(L.self_attn.o_proj,
                     RowParallelLinear::Load(weights, attn + "o_proj", hidden, heads * hd, q_rows,
                                             config.o_proj_bias, comm.rank(), dtype));
    if (config.qk_norm) {
      ASSIGN_OR_RETURN(L.self_attn.q_norm,
                       RmsNormLayer::Load(weights, attn + "q_norm.weight", hd, eps, dtype));
      ASSIGN_OR_RETURN(L.self_attn.k_norm,
                       RmsNormLayer::Load(weights, attn + "k_norm.weight", hd, eps, dtype));
    }
    ASSIGN_OR_RETURN(
        L.post_attention_layernorm,
        RmsNormLayer::Load(weights, pre + "post_attention_layernorm.weight", hidden, eps, dtype));
    ASSIGN_OR_RETURN(L.mlp.gate_up_proj, ColumnParallelLinear::LoadMerged(
                                             weights, {pre + "mlp.gate_proj", pre + "mlp.up_proj"},
                                             inter, hidden, p.intermediate, dtype));
    ASSIGN_OR_RETURN(L.mlp.down_proj, RowParallelLinear::Load(weights, pre + "mlp.down_proj",
                                                              hidden, inter, p.intermediate,
                                                              /*bias=*/false, comm.rank(), dtype));
  }
  ASSIGN_OR_RETURN(m->norm_, RmsNormLayer::Load(weights, "model.norm.weight", hidden, eps, dtype));

  const int64_t max_shard = EvenSplit(config.vocab_size, comm.size(), 0).size();
  if (config.tie_word_embeddings) {
    m->lm_head_ = ParallelLmHead(m->embed_tokens_.weight(), p.vocab, config.vocab_size, max_shard);
  } else {
    ASSIGN_OR_RETURN(Tensor w, weights.Load("lm_head.weight", {config.vocab_size, hidden},
                                            ShardSpec::Rows(p.vocab), dtype));
    m->lm_head_ = ParallelLmHead(std::move(w), p.vocab, config.vocab_size, max_shard);
  }
  return m;
}

KvCacheShape LlamaForCausalLM::CacheShape(int64_t num_blocks, int block_size) const {
  KvCacheShape s;
  s.num_layers = config_.num_hidden_layers;
  s.num_blocks = num_blocks;
  s.block_size = block_size;
  s.num_kv_heads = local_kv_heads_;
  s.head_dim = config_.head_dim;
  s.dtype = DType::kFloat32;
  return s;
}

absl::Status LlamaForCausalLM::AttentionForward(int layer, const ModelInput& in, const Tensor& x,
                                                KvCache& cache, Tensor& out) {
  const Attention& a = layers_[layer].self_attn;
  const int64_t n = x.dim(0);
  const int64_t hd = config_.head_dim;
  Tensor q = Tensor::Empty(DType::kFloat32, {n, local_heads_ * hd});
  Tensor k = Tensor::Empty(DType::kFloat32, {n, local_kv_heads_ * hd});
  Tensor v = Tensor::Empty(DType::kFloat32, {n, local_kv_heads_ * hd});
  RETURN_IF_ERROR(a.q_proj.Forward(x, q));
  RETURN_IF_ERROR(a.k_proj.Forward(x, k));
  RETURN_IF_ERROR(a.v_proj.Forward(x, v));
  if (config_.qk_norm) {
    Tensor qh = q.Reshape({n * local_heads_, hd});
    Tensor kh = k.Reshape({n * local_kv_heads_, hd});
    RETURN_IF_ERROR(a.q_norm.Forward(qh, qh));
    RETURN_IF_ERROR(a.k_norm.Forward(kh, kh));
  }
  RETURN_IF_ERROR(ops::ApplyRope(in.positions, q, k, static_cast<int>(hd), rope_cache_));
  RETURN_IF_ERROR(ops::KvStore(k, v, in.slot_mapping, cache.k(layer), cache.v(layer)));
  Tensor attn = Tensor::Empty(DType::kFloat32, {n, local_heads_ * hd});
  RETURN_IF_ERROR(ops::PagedAttention(q, cache.k(layer), cache.v(layer), in.attn, local_heads_,
                                      local_kv_heads_, attn_scale_, attn));
  return a.o_proj.Forward(attn, comm_, out);
}

absl::Status LlamaForCausalLM::MlpForward(int layer, const Tensor& x, Tensor& out) {
  const Mlp& mlp = layers_[layer].mlp;
  const int64_t n = x.dim(0);
  Tensor gate_up = Tensor::Empty(DType::kFloat32, {n, 2 * local_inter_});
  RETURN_IF_ERROR(mlp.gate_up_proj.Forward(x, gate_up));
  Tensor act = Tensor::Empty(DType::kFloat32, {n, local_inter_});
  RETURN_IF_ERROR(ops::SiluAndMul(gate_up, act));
  return mlp.down_proj.Forward(act, comm_, out);
}

absl::Status LlamaForCausalLM::Forward(const ModelInput& in, KvCache& cache, Tensor& logits) {
  const int64_t n = in.token_ids.dim(0);
  const int64_t hidden = config_.hidden_size;
  // hidden = embed(tokens); residual starts at zero so every layer is
  //   residual += hidden; hidden = norm(residual); hidden = block(hidden).
  Tensor h = Tensor::Empty(DType::kFloat32, {n, hidden});
  Tensor residual = Tensor::Zeros(DType::kFloat32, {n, hidden});
  Tensor tmp = Tensor::Empty(DType::kFloat32, {n, hidden});
  RETURN_IF_ERROR(embed_tokens_.Forward(in.token_ids, comm_, h));
  for (int i = 0; i < static_cast<int>(layers_.size()); ++i) {
    const DecoderLayer& L = layers_[i];
    RETURN_IF_ERROR(L.input_layernorm.ForwardAdd(h, residual));
    RETURN_IF_ERROR(AttentionForward(i, in, h, cache, tmp));
    std::swap(h, tmp);
    RETURN_IF_ERROR(L.post_attention_layernorm.ForwardAdd(h, residual));
    RETURN_IF_ERROR(MlpForward(i, h, tmp));
    std::swap(h, tmp);
  }
  RETURN_IF_ERROR(norm_.ForwardAdd(h, residual));
  const int64_t m = in.logits_indices.dim(0);
  Tensor selected = Tensor::Empty(DType::kFloat32, {m, hidden});
  RETURN_IF_ERROR(ops::GatherRows(h, in.logits_indices, selected));
  return lm_head_.Forward(selected, comm_, logits);
}

}  // namespace tessera
