// ModelConfig from a Hugging Face config.json (ParseModelConfig,
// LoadModelConfig; worker/model/model_config.h): typed, range-checked field
// access, the supported architectures and the rope-scaling forms.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/model/model_config.h"

namespace tessera {
namespace {

using json = nlohmann::json;

// Typed, range-checked access to the fields of one JSON object; every error
// names the source file and the field.
class Fields {
 public:
  Fields(const json& object, std::string source, std::string prefix = "")
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

  absl::Status Error(absl::string_view field, absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": field \"", prefix_, field, "\" ", message));
  }
  absl::Status Unimplemented(absl::string_view field, absl::string_view message) const {
    return absl::UnimplementedError(
        absl::StrCat(source_, ": field \"", prefix_, field, "\" ", message));
  }

  // The field's value, or nullptr when it is absent or JSON null.
  const json* Get(absl::string_view field) const {
    auto it = object_.find(std::string(field));
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  absl::StatusOr<int64_t> Int(absl::string_view field, const json& v, int64_t min,
                              int64_t max) const {
    int64_t value = 0;
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error(field, absl::StrCat("is out of range (got ", u, ")"));
      }
      value = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      value = v.get<int64_t>();
    } else if (v.is_number_float() && std::isfinite(v.get<double>()) &&
               std::floor(v.get<double>()) == v.get<double>() &&
               std::fabs(v.get<double>()) < 9e15) {
      value = static_cast<int64_t>(v.get<double>());
    } else {
      return Error(field, absl::StrCat("must be an integer (got ", v.dump(), ")"));
    }
    if (value < min || value > max) {
      return Error(field, absl::StrCat("must be in [", min, ", ", max, "] (got ", value, ")"));
    }
    return value;
  }

  absl::StatusOr<int64_t> RequiredInt(absl::string_view field, int64_t min = 1,
                                      int64_t max = std::numeric_limits<int32_t>::max()) const {
    const json* v = Get(field);
    if (v == nullptr) return Error(field, "is missing");
    return Int(field, *v, min, max);
  }

  absl::StatusOr<int64_t> OptionalInt(absl::string_view field, int64_t fallback, int64_t min = 1,
                                      int64_t max = std::numeric_limits<int32_t>::max()) const {
    const json* v = Get(field);
    if (v == nullptr) return fallback;
    return Int(field, *v, min, max);
  }

  absl::StatusOr<double> OptionalDouble(absl::string_view field, double fallback) const {
    const json* v = Get(field);
    if (v == nullptr) return fallback;
    if (!v->is_number())
      return Error(field, absl::StrCat("must be a number (got ", v->dump(), ")"));
    double d = v->get<double>();
    if (!std::isfinite(d)) return Error(field, "must be finite");
    return d;
  }

  absl::StatusOr<double> RequiredDouble(absl::string_view field) const {
    if (Get(field) == nullptr) return Error(field, "is missing");
    return OptionalDouble(field, 0.0);
  }

  absl::StatusOr<bool> OptionalBool(absl::string_view field, bool fallback) const {
    const json* v = Get(field);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) {
      return Error(field, absl::StrCat("must be true or false (got ", v->dump(), ")"));
    }
    return v->get<bool>();
  }

  absl::StatusOr<std::optional<std::string>> OptionalString(absl::string_view field) const {
    const json* v = Get(field);
    if (v == nullptr) return std::optional<std::string>();
    if (!v->is_string())
      return Error(field, absl::StrCat("must be a string (got ", v->dump(), ")"));
    return std::optional<std::string>(v->get<std::string>());
  }

 private:
  const json& object_;
  std::string source_;
  std::string prefix_;
};

struct Architecture {
  const char* name;
  const char* model_type;
  int64_t default_max_position_embeddings;  // Hugging Face's default for the type
};
constexpr Architecture kArchitectures[] = {
    {"LlamaForCausalLM", "llama", 2048},
    {"MistralForCausalLM", "mistral", 4096 * 32},
    {"Qwen2ForCausalLM", "qwen2", 32768},
    {"Qwen3ForCausalLM", "qwen3", 32768},
};

std::string SupportedArchitectures() {
  std::vector<std::string> names;
  for (const Architecture& a : kArchitectures) names.push_back(a.name);
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<DType> ParseTorchDtype(const Fields& f, absl::string_view field,
                                      const std::string& name) {
  if (name == "float32" || name == "float") return DType::kFloat32;
  if (name == "float16" || name == "half") return DType::kFloat16;
  if (name == "bfloat16") return DType::kBFloat16;
  return f.Error(field, absl::StrCat("must be float32, float16 or bfloat16 (got \"", name, "\")"));
}

// rope_scaling (or the scaling part of transformers v5's rope_parameters).
absl::StatusOr<ops::RopeScaling> ParseRopeScaling(const json& v, const std::string& source,
                                                  absl::string_view field) {
  ops::RopeScaling scaling;
  if (!v.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": field \"", field, "\" must be an object or null (got ", v.dump(), ")"));
  }
  Fields f(v, source, absl::StrCat(field, "."));
  ASSIGN_OR_RETURN(std::optional<std::string> rope_type, f.OptionalString("rope_type"));
  if (!rope_type) {
    ASSIGN_OR_RETURN(rope_type, f.OptionalString("type"));
  }
  if (!rope_type) return f.Error("rope_type", "is missing");
  if (*rope_type == "default") return scaling;
  if (*rope_type == "linear") {
    scaling.type = ops::RopeScaling::Type::kLinear;
    ASSIGN_OR_RETURN(scaling.factor, f.RequiredDouble("factor"));
    return scaling;
  }
  if (*rope_type == "llama3") {
    scaling.type = ops::RopeScaling::Type::kLlama3;
    ASSIGN_OR_RETURN(scaling.factor, f.RequiredDouble("factor"));
    ASSIGN_OR_RETURN(scaling.low_freq_factor, f.RequiredDouble("low_freq_factor"));
    ASSIGN_OR_RETURN(scaling.high_freq_factor, f.RequiredDouble("high_freq_factor"));
    ASSIGN_OR_RETURN(
        scaling.original_max_position_embeddings,
        f.RequiredInt("original_max_position_embeddings", 1, std::numeric_limits<int64_t>::max()));
    return scaling;
  }
  return f.Unimplemented("rope_type", absl::StrCat("\"", *rope_type,
                                                   "\" is not supported (supported: llama3, "
                                                   "linear, default)"));
}

absl::Status ParseInto(const json& root, const std::string& src, ModelConfig& c) {
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": the config must be a JSON object"));
  }
  Fields f(root, src);

  // Architecture and model type.
  ASSIGN_OR_RETURN(std::optional<std::string> model_type, f.OptionalString("model_type"));
  if (const json* archs = f.Get("architectures")) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
      return f.Error("architectures",
                     absl::StrCat("must be a non-empty list of strings (got ", archs->dump(), ")"));
    }
    c.architecture = (*archs)[0].get<std::string>();
  } else if (model_type) {
    for (const Architecture& a : kArchitectures) {
      if (*model_type == a.model_type) c.architecture = a.name;
    }
    if (c.architecture.empty()) {
      return f.Unimplemented("model_type", absl::StrCat("\"", *model_type,
                                                        "\" is not supported and no "
                                                        "\"architectures\" are given (supported: ",
                                                        SupportedArchitectures(), ")"));
    }
  } else {
    return f.Error("architectures", "is missing (and so is \"model_type\")");
  }
  int64_t default_max_positions = 0;
  for (const Architecture& a : kArchitectures) {
    if (c.architecture == a.name) {
      c.model_type = a.model_type;
      default_max_positions = a.default_max_position_embeddings;
    }
  }
  if (c.model_type.empty()) {
    return f.Unimplemented("architectures", absl::StrCat("names \"", c.architecture,
                                                         "\", which is not supported (supported: ",
                                                         SupportedArchitectures(), ")"));
  }
  const bool is_qwen2 = c.model_type == "qwen2";
  const bool is_qwen3 = c.model_type == "qwen3";

  // Shapes.
  ASSIGN_OR_RETURN(int64_t hidden, f.RequiredInt("hidden_size"));
  ASSIGN_OR_RETURN(int64_t inter, f.RequiredInt("intermediate_size"));
  ASSIGN_OR_RETURN(int64_t layers, f.RequiredInt("num_hidden_layers"));
  ASSIGN_OR_RETURN(int64_t heads, f.RequiredInt("num_attention_heads"));
  ASSIGN_OR_RETURN(int64_t kv_heads, f.OptionalInt("num_key_value_heads", heads));
  ASSIGN_OR_RETURN(int64_t head_dim, f.OptionalInt("head_dim", hidden / heads));
  ASSIGN_OR_RETURN(int64_t vocab, f.RequiredInt("vocab_size"));
  ASSIGN_OR_RETURN(c.max_position_embeddings,
                   f.OptionalInt("max_position_embeddings", default_max_positions, 1,
                                 std::numeric_limits<int64_t>::max()));
  c.hidden_size = static_cast<int>(hidden);
  c.intermediate_size = static_cast<int>(inter);
  c.num_hidden_layers = static_cast<int>(layers);
  c.num_attention_heads = static_cast<int>(heads);
  c.num_key_value_heads = static_cast<int>(kv_heads);
  c.head_dim = static_cast<int>(head_dim);
  c.vocab_size = static_cast<int>(vocab);

  // Norm, rope.
  ASSIGN_OR_RETURN(c.rms_norm_eps, f.OptionalDouble("rms_norm_eps", 1e-6));
  const json* rope_parameters = f.Get("rope_parameters");  // transformers >= 5
  double default_theta = 10000.0;
  if (rope_parameters != nullptr && rope_parameters->is_object()) {
    Fields rp(*rope_parameters, src, "rope_parameters.");
    ASSIGN_OR_RETURN(default_theta, rp.OptionalDouble("rope_theta", default_theta));
  }
  ASSIGN_OR_RETURN(c.rope_theta, f.OptionalDouble("rope_theta", default_theta));
  if (const json* rs = f.Get("rope_scaling")) {
    ASSIGN_OR_RETURN(c.rope_scaling, ParseRopeScaling(*rs, src, "rope_scaling"));
  } else if (rope_parameters != nullptr) {
    ASSIGN_OR_RETURN(c.rope_scaling, ParseRopeScaling(*rope_parameters, src, "rope_parameters"));
  }

  // Biases, norms, embeddings.
  ASSIGN_OR_RETURN(c.tie_word_embeddings, f.OptionalBool("tie_word_embeddings", false));
  ASSIGN_OR_RETURN(bool attention_bias, f.OptionalBool("attention_bias", false));
  if (is_qwen2) {
    // Hugging Face's Qwen2 always has q/k/v biases and never an o_proj bias.
    c.attention_bias = true;
    c.o_proj_bias = false;
  } else {
    c.attention_bias = attention_bias;
    c.o_proj_bias = attention_bias;
  }
  c.qk_norm = is_qwen3;
  ASSIGN_OR_RETURN(bool mlp_bias, f.OptionalBool("mlp_bias", false));
  if (mlp_bias) return f.Unimplemented("mlp_bias", "is true; MLP biases are not supported");

  // Sliding-window attention is not implemented: refuse a window that would
  // ever be active (Hugging Face's Llama has none and ignores the field).
  bool window_active = c.model_type == "mistral";
  if (is_qwen2 || is_qwen3) {
    ASSIGN_OR_RETURN(window_active, f.OptionalBool("use_sliding_window", false));
  }
  if (window_active) {
    ASSIGN_OR_RETURN(int64_t window,
                     f.OptionalInt("sliding_window", 0, 0, std::numeric_limits<int64_t>::max()));
    if (window > 0 && window < c.max_position_embeddings) {
      return f.Unimplemented(
          "sliding_window",
          absl::StrCat("is ", window, ", below max_position_embeddings (",
                       c.max_position_embeddings, "); sliding-window attention is not supported"));
    }
  }

  // Special tokens.
  if (const json* bos = f.Get("bos_token_id")) {
    ASSIGN_OR_RETURN(int64_t id,
                     f.Int("bos_token_id", *bos, 0, std::numeric_limits<int32_t>::max()));
    c.bos_token_id = static_cast<int32_t>(id);
  }
  if (const json* eos = f.Get("eos_token_id")) {
    if (eos->is_array()) {
      for (const json& e : *eos) {
        ASSIGN_OR_RETURN(int64_t id,
                         f.Int("eos_token_id", e, 0, std::numeric_limits<int32_t>::max()));
        c.eos_token_ids.push_back(static_cast<int32_t>(id));
      }
    } else {
      ASSIGN_OR_RETURN(int64_t id,
                       f.Int("eos_token_id", *eos, 0, std::numeric_limits<int32_t>::max()));
      c.eos_token_ids.push_back(static_cast<int32_t>(id));
    }
  }

  // Dtype and activation.
  ASSIGN_OR_RETURN(std::optional<std::string> dtype, f.OptionalString("torch_dtype"));
  const char* dtype_field = "torch_dtype";
  if (!dtype) {
    ASSIGN_OR_RETURN(dtype, f.OptionalString("dtype"));
    dtype_field = "dtype";
  }
  if (dtype) {
    ASSIGN_OR_RETURN(c.torch_dtype, ParseTorchDtype(f, dtype_field, *dtype));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> act, f.OptionalString("hidden_act"));
  if (act) c.hidden_act = *act;
  if (c.hidden_act != "silu") {
    return f.Unimplemented("hidden_act",
                           absl::StrCat("is \"", c.hidden_act, "\"; only \"silu\" is supported"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text,
                                             absl::string_view source_name) {
  const std::string src(source_name);
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": invalid JSON: ", e.what()));
  }
  ModelConfig config;
  try {
    RETURN_IF_ERROR(ParseInto(root, src, config));
  } catch (const json::exception& e) {  // defensive: the accessors check types first
    return absl::InvalidArgumentError(absl::StrCat(src, ": ", e.what()));
  }
  absl::Status valid = config.Validate();
  if (!valid.ok()) {
    return absl::Status(valid.code(), absl::StrCat(src, ": ", valid.message()));
  }
  return config;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return ParseModelConfig(text.str(), path);
}

}  // namespace tessera
