#include "worker/model/llama.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/device/cuda_device.h"

namespace tessera {
namespace {

// Counts the bytes of every tensor loaded through it (the rank's weights).
class CountingWeightSource final : public WeightSource {
 public:
  explicit CountingWeightSource(WeightSource& inner) : inner_(inner) {}
  absl::StatusOr<Tensor> Load(const std::string& name, const std::vector<int64_t>& full_shape,
                              const ShardSpec& shard, DType dtype) override {
    absl::StatusOr<Tensor> t = inner_.Load(name, full_shape, shard, dtype);
    if (t.ok()) bytes_ += static_cast<int64_t>(t->nbytes());
    return t;
  }
  bool Has(const std::string& name) const override { return inner_.Has(name); }
  std::string Describe() const override { return inner_.Describe(); }
  int64_t bytes() const { return bytes_; }

 private:
  WeightSource& inner_;
  int64_t bytes_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> LlamaForCausalLM::Load(const ModelConfig& config,
                                                                         WeightSource& weights,
                                                                         Communicator& comm,
                                                                         DType dtype,
                                                                         Device device) {
  RETURN_IF_ERROR(config.Validate());
  switch (device) {
    case Device::kCpu:
      if (dtype != DType::kFloat32) {
        return absl::InvalidArgumentError(absl::StrCat("the CPU path computes in float32, not ",
                                                       DTypeName(dtype), "; use a CUDA device"));
      }
      break;
    case Device::kCuda:
      if (!CudaBuilt()) {
        return absl::FailedPreconditionError(
            "a CUDA model needs the CUDA path, which this binary was built without");
      }
      if (dtype != DType::kFloat32 && dtype != DType::kFloat16 && dtype != DType::kBFloat16) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot compute in ", DTypeName(dtype), " on CUDA"));
      }
      if (config.head_dim % 8 != 0 || config.head_dim > 256) {
        return absl::UnimplementedError(
            absl::StrCat("head_dim ", config.head_dim,
                         ": the CUDA attention kernels need a multiple of 8 up to 256"));
      }
      break;
  }
  std::unique_ptr<LlamaForCausalLM> m(new LlamaForCausalLM(config, comm));
  m->dtype_ = dtype;
  m->device_ = device;
  m->logits_dtype_ = DType::kFloat32;  // ops::Linear writes float32 from half inputs
  CountingWeightSource counted(weights);
  WeightSource& src = counted;
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
  ASSIGN_OR_RETURN(
      m->rope_cache_,
      PlaceOnDevice(ops::BuildRopeCache(static_cast<int>(hd), config.max_position_embeddings,
                                        config.rope_theta, config.rope_scaling),
                    device));

  const Range q_rows{p.q_heads.begin * hd, p.q_heads.end * hd};
  const Range kv_rows{p.kv_heads.begin * hd, p.kv_heads.end * hd};

  ASSIGN_OR_RETURN(m->embed_tokens_,
                   VocabParallelEmbedding::Load(src, "model.embed_tokens.weight", config.vocab_size,
                                                hidden, p.vocab, dtype, device));
  m->layers_.resize(config.num_hidden_layers);
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    DecoderLayer& L = m->layers_[i];
    const std::string pre = absl::StrCat("model.layers.", i, ".");
    const std::string attn = pre + "self_attn.";
    const bool bias = config.attention_bias;
    ASSIGN_OR_RETURN(L.input_layernorm, RmsNormLayer::Load(src, pre + "input_layernorm.weight",
                                                           hidden, eps, dtype, device));
    ASSIGN_OR_RETURN(L.self_attn.q_proj,
                     ColumnParallelLinear::Load(src, attn + "q_proj", heads * hd, hidden, q_rows,
                                                bias, dtype, device));
    ASSIGN_OR_RETURN(L.self_attn.k_proj,
                     ColumnParallelLinear::Load(src, attn + "k_proj", kv_heads * hd, hidden,
                                                kv_rows, bias, dtype, device));
    ASSIGN_OR_RETURN(L.self_attn.v_proj,
                     ColumnParallelLinear::Load(src, attn + "v_proj", kv_heads * hd, hidden,
                                                kv_rows, bias, dtype, device));
    ASSIGN_OR_RETURN(L.self_attn.o_proj,
                     RowParallelLinear::Load(src, attn + "o_proj", hidden, heads * hd, q_rows,
                                             config.o_proj_bias, comm.rank(), dtype, device));
    if (config.qk_norm) {
      ASSIGN_OR_RETURN(L.self_attn.q_norm,
                       RmsNormLayer::Load(src, attn + "q_norm.weight", hd, eps, dtype, device));
      ASSIGN_OR_RETURN(L.self_attn.k_norm,
                       RmsNormLayer::Load(src, attn + "k_norm.weight", hd, eps, dtype, device));
    }
    ASSIGN_OR_RETURN(L.post_attention_layernorm,
                     RmsNormLayer::Load(src, pre + "post_attention_layernorm.weight", hidden, eps,
                                        dtype, device));
    ASSIGN_OR_RETURN(L.mlp.gate_up_proj, ColumnParallelLinear::LoadMerged(
                                             src, {pre + "mlp.gate_proj", pre + "mlp.up_proj"},
                                             inter, hidden, p.intermediate, dtype, device));
    ASSIGN_OR_RETURN(L.mlp.down_proj, RowParallelLinear::Load(src, pre + "mlp.down_proj", hidden,
                                                              inter, p.intermediate, /*bias=*/false,
                                                              comm.rank(), dtype, device));
  }
  ASSIGN_OR_RETURN(m->norm_,
                   RmsNormLayer::Load(src, "model.norm.weight", hidden, eps, dtype, device));

  const int64_t max_shard = EvenSplit(config.vocab_size, comm.size(), 0).size();
  Tensor head = m->embed_tokens_.weight();
  if (!config.tie_word_embeddings) {
    ASSIGN_OR_RETURN(Tensor w, src.Load("lm_head.weight", {config.vocab_size, hidden},
                                        ShardSpec::Rows(p.vocab), dtype));
    ASSIGN_OR_RETURN(head, PlaceOnDevice(std::move(w), device));
  }
  ASSIGN_OR_RETURN(m->lm_head_,
                   ParallelLmHead::Make(std::move(head), p.vocab, config.vocab_size, max_shard));
  m->weight_bytes_ = counted.bytes();
  return m;
}

KvCacheShape LlamaForCausalLM::CacheShape(int64_t num_blocks, int block_size) const {
  KvCacheShape s;
  s.num_layers = config_.num_hidden_layers;
  s.num_blocks = num_blocks;
  s.block_size = block_size;
  s.num_kv_heads = local_kv_heads_;
  s.head_dim = config_.head_dim;
  s.dtype = dtype_;
  return s;
}

int64_t LlamaForCausalLM::ActWidth(Act act) const {
  const int64_t hd = config_.head_dim;
  switch (act) {
    case kHidden:
    case kResidual:
    case kTmp:
    case kSelected:
      return config_.hidden_size;
    case kQ:
    case kAttn:
      return local_heads_ * hd;
    case kK:
    case kV:
      return local_kv_heads_ * hd;
    case kGateUp:
      return 2 * local_inter_;
    case kMlpAct:
      return local_inter_;
    case kLocalLogits:
      return comm_.size() > 1 ? lm_head_.max_shard() : 0;
    case kGathered:  // per logits row, over all ranks
      return comm_.size() > 1 ? comm_.size() * lm_head_.max_shard() : 0;
    case kLogits:
      return config_.vocab_size;
    case kNumActs:
      break;
  }
  return 0;
}

DType LlamaForCausalLM::ActDType(Act act) const {
  return act == kLocalLogits || act == kGathered || act == kLogits ? logits_dtype_ : dtype_;
}

absl::Status LlamaForCausalLM::ReserveActivations(int64_t max_tokens, int64_t max_logit_rows) {
  if (device_ == Device::kCpu) return absl::OkStatus();
  if (max_tokens <= token_capacity_ && max_logit_rows <= logit_capacity_) {
    return absl::OkStatus();
  }
  const int64_t tokens = std::max(max_tokens, token_capacity_);
  const int64_t logit_rows = std::max(max_logit_rows, logit_capacity_);
  // Free the old buffers first: the peak is then the new size, not the sum.
  for (Tensor& t : acts_) t = Tensor();
  token_capacity_ = logit_capacity_ = 0;
  ++acts_generation_;
  for (int a = 0; a < kNumActs; ++a) {
    const Act act = static_cast<Act>(a);
    const int64_t rows = a < kNumTokenActs ? tokens : logit_rows;
    const int64_t width = ActWidth(act);
    if (width == 0) continue;
    ASSIGN_OR_RETURN(acts_[a], Tensor::TryEmpty(ActDType(act), {rows * width}, device_));
  }
  token_capacity_ = tokens;
  logit_capacity_ = logit_rows;
  return absl::OkStatus();
}

Tensor LlamaForCausalLM::Activation(Act act, int64_t rows) const {
  const int64_t width = ActWidth(act);
  if (device_ == Device::kCpu) return Tensor::Empty(ActDType(act), {rows, width});
  return acts_[act].Slice(0, rows * width).Reshape({rows, width});
}

absl::Status LlamaForCausalLM::AttentionForward(int layer, const ModelInput& in, const Tensor& x,
                                                KvCache& cache, Tensor& out) {
  const Attention& a = layers_[layer].self_attn;
  const int64_t n = x.dim(0);
  const int64_t hd = config_.head_dim;
  Tensor q = Activation(kQ, n);
  Tensor k = Activation(kK, n);
  Tensor v = Activation(kV, n);
  RETURN_IF_ERROR(a.q_proj.Forward(x, q));
  RETURN_IF_ERROR(a.k_proj.Forward(x, k));
  RETURN_IF_ERROR(a.v_proj.Forward(x, v));
  if (config_.qk_norm) {
    Tensor qh = q.Reshape({n * local_heads_, hd});
    Tensor kh = k.Reshape({n * local_kv_heads_, hd});
    RETURN_IF_ERROR(a.q_norm.Forward(qh, qh));
    RETURN_IF_ERROR(a.k_norm.Forward(kh, kh));
  }
  RETURN_IF_ERROR(ops::RopeAndKvStore(in.positions, q, k, v, static_cast<int>(hd), rope_cache_,
                                      in.slot_mapping, cache.k(layer), cache.v(layer)));
  Tensor attn = Activation(kAttn, n);
  RETURN_IF_ERROR(ops::PagedAttention(q, cache.k(layer), cache.v(layer), in.attn, local_heads_,
                                      local_kv_heads_, attn_scale_, attn));
  return a.o_proj.Forward(attn, comm_, out);
}

absl::Status LlamaForCausalLM::MlpForward(int layer, const Tensor& x, Tensor& out) {
  const Mlp& mlp = layers_[layer].mlp;
  const int64_t n = x.dim(0);
  Tensor gate_up = Activation(kGateUp, n);
  RETURN_IF_ERROR(mlp.gate_up_proj.Forward(x, gate_up));
  Tensor act = Activation(kMlpAct, n);
  RETURN_IF_ERROR(ops::SiluAndMul(gate_up, act));
  return mlp.down_proj.Forward(act, comm_, out);
}

absl::Status LlamaForCausalLM::Forward(const ModelInput& in, KvCache& cache, Tensor& logits) {
  const int64_t n = in.token_ids.dim(0);
  const int64_t m = in.logits_indices.dim(0);
  const int64_t hidden = config_.hidden_size;
  RETURN_IF_ERROR(ReserveActivations(n, m));  // CUDA: grows the buffers when needed
  // hidden = embed(tokens); residual starts at zero so every layer is
  //   residual += hidden; hidden = norm(residual); hidden = block(hidden).
  Tensor h = Activation(kHidden, n);
  Tensor residual;
  if (device_ == Device::kCpu) {
    residual = Tensor::Zeros(DType::kFloat32, {n, hidden});
  } else {
    residual = Activation(kResidual, n);
    RETURN_IF_ERROR(ZeroAsync(residual));
  }
  Tensor tmp = Activation(kTmp, n);
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
  if (logits.data() == nullptr) logits = Activation(kLogits, m);
  // A step of prefill chunks that sample nothing needs no logits (every rank
  // sees the same m, so all skip the lm_head's collective together).
  if (m == 0) return absl::OkStatus();
  Tensor selected = Activation(kSelected, m);
  RETURN_IF_ERROR(ops::GatherRows(h, in.logits_indices, selected));
  if (comm_.size() == 1 || device_ == Device::kCpu) {
    return lm_head_.Forward(selected, comm_, logits);
  }
  ParallelLmHead::Scratch scratch;
  scratch.local = Activation(kLocalLogits, m);
  scratch.gathered = acts_[kGathered]
                         .Slice(0, comm_.size() * m * lm_head_.max_shard())
                         .Reshape({comm_.size(), m, lm_head_.max_shard()});
  return lm_head_.Forward(selected, comm_, logits, &scratch);
}

}  // namespace tessera
