#include "worker/model/model_config.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tessera {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("field \"", field, "\" ", message));
}

}  // namespace

absl::Status ModelConfig::Validate() const {
  auto positive = [](absl::string_view field, int64_t v) -> absl::Status {
    if (v <= 0) return Invalid(field, absl::StrCat("must be positive (got ", v, ")"));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(positive("hidden_size", hidden_size));
  RETURN_IF_ERROR(positive("intermediate_size", intermediate_size));
  RETURN_IF_ERROR(positive("num_hidden_layers", num_hidden_layers));
  RETURN_IF_ERROR(positive("num_attention_heads", num_attention_heads));
  RETURN_IF_ERROR(positive("num_key_value_heads", num_key_value_heads));
  RETURN_IF_ERROR(positive("head_dim", head_dim));
  RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  RETURN_IF_ERROR(positive("max_position_embeddings", max_position_embeddings));
  if (num_attention_heads % num_key_value_heads != 0) {
    return Invalid(
        "num_attention_heads",
        absl::StrCat("(", num_attention_heads, ") must be a multiple of num_key_value_heads (",
                     num_key_value_heads, ")"));
  }
  if (head_dim % 2 != 0) {
    return Invalid("head_dim",
                   absl::StrCat("must be even for rotary embeddings (got ", head_dim, ")"));
  }
  if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps)) {
    return Invalid("rms_norm_eps", absl::StrCat("must be positive (got ", rms_norm_eps, ")"));
  }
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) {
    return Invalid("rope_theta", absl::StrCat("must be positive (got ", rope_theta, ")"));
  }
  switch (rope_scaling.type) {
    case ops::RopeScaling::Type::kNone:
      break;
    case ops::RopeScaling::Type::kLinear:
      if (!(rope_scaling.factor > 0)) {
        return Invalid("rope_scaling.factor",
                       absl::StrCat("must be positive (got ", rope_scaling.factor, ")"));
      }
      break;
    case ops::RopeScaling::Type::kLlama3:
      if (!(rope_scaling.factor > 0)) {
        return Invalid("rope_scaling.factor",
                       absl::StrCat("must be positive (got ", rope_scaling.factor, ")"));
      }
      if (!(rope_scaling.low_freq_factor > 0) ||
          !(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor)) {
        return Invalid(
            "rope_scaling.high_freq_factor",
            absl::StrCat("must exceed low_freq_factor > 0 (got low ", rope_scaling.low_freq_factor,
                         ", high ", rope_scaling.high_freq_factor, ")"));
      }
      if (rope_scaling.original_max_position_embeddings <= 0) {
        return Invalid("rope_scaling.original_max_position_embeddings",
                       absl::StrCat("must be positive (got ",
                                    rope_scaling.original_max_position_embeddings, ")"));
      }
      break;
  }
  if (bos_token_id && (*bos_token_id < 0 || *bos_token_id >= vocab_size)) {
    return Invalid("bos_token_id", absl::StrCat("(", *bos_token_id, ") must be below vocab_size (",
                                                vocab_size, ")"));
  }
  for (int32_t eos : eos_token_ids) {
    if (eos < 0 || eos >= vocab_size) {
      return Invalid("eos_token_id",
                     absl::StrCat("(", eos, ") must be below vocab_size (", vocab_size, ")"));
    }
  }
  if (hidden_act != "silu") {
    return Invalid("hidden_act", absl::StrCat("must be \"silu\" (got \"", hidden_act, "\")"));
  }
  if (qk_norm && model_type != "qwen3") {
    return Invalid("model_type", absl::StrCat("\"", model_type, "\" has no q/k norm"));
  }
  return absl::OkStatus();
}

std::string LlamaWeightNames::Layer(int i, absl::string_view suffix) {
  return absl::StrCat("model.layers.", i, ".", suffix);
}

}  // namespace tessera
