// ModelConfig: the shape and hyper-parameters of a Llama-family decoder, read
// from a Hugging Face `config.json` (parsed in model_config_json.cc) or taken
// from a named `--dummy` preset (worker/model/dummy_presets.h), and
// LlamaWeightNames, the Hugging Face tensor names of such a model.
//
// Supported architectures (config "architectures"[0]):
//   LlamaForCausalLM    model_type "llama"   (attention_bias from the config)
//   MistralForCausalLM  model_type "mistral" (no sliding window)
//   Qwen2ForCausalLM    model_type "qwen2"   (q/k/v projections carry biases)
//   Qwen3ForCausalLM    model_type "qwen3"   (per-head RMSNorm of q and k)
// Anything else, and features these types have but Tessera does not run
// (an active sliding window, rope scaling other than llama3 / linear, MLP
// biases, an activation other than silu), is refused with UNIMPLEMENTED naming
// the file and the field, never silently ignored.
//
// Thread-safety: ModelConfig is a plain value; the functions are pure (the
// loader reads one file).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace tessera {

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  std::string model_type;    // "llama", "mistral", "qwen2", "qwen3"

  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;  // config default: num_attention_heads
  int head_dim = 0;             // config default: hidden_size / num_attention_heads
  int vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  ops::RopeScaling rope_scaling;

  bool tie_word_embeddings = false;  // lm_head reuses model.embed_tokens.weight
  bool attention_bias = false;       // q/k/v projections have biases (qwen2: always)
  bool o_proj_bias = false;          // o_proj has a bias (llama/qwen3 with attention_bias)
  bool qk_norm = false;              // per-head RMSNorm of q and k before rope (qwen3)

  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;   // config eos_token_id: an int or a list
  DType torch_dtype = DType::kFloat32;  // the checkpoint's dtype ("torch_dtype" or "dtype")
  std::string hidden_act = "silu";

  int64_t q_size() const { return int64_t{num_attention_heads} * head_dim; }
  int64_t kv_size() const { return int64_t{num_key_value_heads} * head_dim; }

  // OK when the model can run: positive sizes, num_attention_heads divisible
  // by num_key_value_heads, an even head_dim (rotate-half rope), positive
  // eps/theta, hidden_act "silu", special ids inside the vocabulary, sane
  // rope scaling. INVALID_ARGUMENT naming the field otherwise.
  absl::Status Validate() const;
};

// Parses the text of a Hugging Face config.json. `source_name` (usually the
// file's path) prefixes every error, which also names the field:
// INVALID_ARGUMENT for malformed JSON or a missing/mistyped/invalid field,
// UNIMPLEMENTED for an unsupported architecture or feature. The result has
// passed Validate().
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text,
                                             absl::string_view source_name);

// Reads and parses `model_dir`/config.json (NOT_FOUND when it cannot be read).
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

// The Hugging Face tensor names of a Llama-family checkpoint, in one place so
// that model code and tests agree. Shapes are the full (unsharded) ones:
//   EmbedTokens        [vocab, hidden]
//   InputLayerNorm(i), PostAttentionLayerNorm(i), FinalNorm  [hidden]
//   QProj(i) [heads*hd, hidden]; KProj(i), VProj(i) [kv*hd, hidden]
//   OProj(i) [hidden, heads*hd]
//   QProjBias(i) [heads*hd]; KProjBias(i), VProjBias(i) [kv*hd]  (attention_bias)
//   OProjBias(i) [hidden]                                        (o_proj_bias)
//   QNorm(i), KNorm(i) [hd]                                      (qk_norm)
//   GateProj(i), UpProj(i) [inter, hidden]; DownProj(i) [hidden, inter]
//   LmHead [vocab, hidden] (absent when tie_word_embeddings)
struct LlamaWeightNames {
  static std::string EmbedTokens() { return "model.embed_tokens.weight"; }
  static std::string FinalNorm() { return "model.norm.weight"; }
  static std::string LmHead() { return "lm_head.weight"; }

  static std::string Layer(int i, absl::string_view suffix);  // "model.layers.{i}.{suffix}"
  static std::string InputLayerNorm(int i) { return Layer(i, "input_layernorm.weight"); }
  static std::string PostAttentionLayerNorm(int i) {
    return Layer(i, "post_attention_layernorm.weight");
  }
  static std::string QProj(int i) { return Layer(i, "self_attn.q_proj.weight"); }
  static std::string KProj(int i) { return Layer(i, "self_attn.k_proj.weight"); }
  static std::string VProj(int i) { return Layer(i, "self_attn.v_proj.weight"); }
  static std::string OProj(int i) { return Layer(i, "self_attn.o_proj.weight"); }
  static std::string QProjBias(int i) { return Layer(i, "self_attn.q_proj.bias"); }
  static std::string KProjBias(int i) { return Layer(i, "self_attn.k_proj.bias"); }
  static std::string VProjBias(int i) { return Layer(i, "self_attn.v_proj.bias"); }
  static std::string OProjBias(int i) { return Layer(i, "self_attn.o_proj.bias"); }
  static std::string QNorm(int i) { return Layer(i, "self_attn.q_norm.weight"); }
  static std::string KNorm(int i) { return Layer(i, "self_attn.k_norm.weight"); }
  static std::string GateProj(int i) { return Layer(i, "mlp.gate_proj.weight"); }
  static std::string UpProj(int i) { return Layer(i, "mlp.up_proj.weight"); }
  static std::string DownProj(int i) { return Layer(i, "mlp.down_proj.weight"); }
};

}  // namespace tessera
