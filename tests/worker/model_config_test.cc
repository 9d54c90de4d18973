// Tests of worker/model/model_config.h: config.json parsing, validation and
// the Hugging Face weight names.
#include "worker/model/model_config.h"

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kStoriesDir = std::string(TESSERA_SHARED_DIR) + "/models/stories260K";

// A minimal valid Llama config with `extra` fields spliced in (which may
// override earlier ones: nlohmann keeps the last duplicate key).
std::string LlamaJson(const std::string& extra = "") {
  std::string json = R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
    "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 1000,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "hidden_act": "silu",
    "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16")";
  if (!extra.empty()) json += ", " + extra;
  return json + "}";
}

TEST(ModelConfigTest, ParsesStories260K) {
  if (!std::filesystem::exists(kStoriesDir + "/config.json")) {
    GTEST_SKIP() << "test data " << kStoriesDir << " is absent";
  }
  auto c = LoadModelConfig(kStoriesDir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, "LlamaForCausalLM");
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 172);
  EXPECT_EQ(c->num_hidden_layers, 5);
  EXPECT_EQ(c->num_attention_heads, 8);
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_EQ(c->max_position_embeddings, 512);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->rope_scaling.type, ops::RopeScaling::Type::kNone);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_FALSE(c->o_proj_bias);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(2));
  EXPECT_EQ(c->torch_dtype, DType::kFloat32);
  EXPECT_EQ(c->hidden_act, "silu");
}

TEST(ModelConfigTest, LlamaDefaults) {
  auto c = ParseModelConfig(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 128,
      "intermediate_size": 256, "num_hidden_layers": 1, "num_attention_heads": 4,
      "vocab_size": 300})",
                            "cfg.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->num_key_value_heads, 4);  // defaults to the query heads
  EXPECT_EQ(c->head_dim, 32);            // hidden / heads
  EXPECT_EQ(c->max_position_embeddings, 2048);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->bos_token_id.has_value());
  EXPECT_TRUE(c->eos_token_ids.empty());
  EXPECT_EQ(c->hidden_act, "silu");
}

TEST(ModelConfigTest, ModelTypeAloneSelectsArchitecture) {
  auto c = ParseModelConfig(R"({"model_type": "qwen3", "hidden_size": 128,
      "intermediate_size": 256, "num_hidden_layers": 1, "num_attention_heads": 4,
      "vocab_size": 300})",
                            "cfg.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, "Qwen3ForCausalLM");
  EXPECT_TRUE(c->qk_norm);
}

TEST(ModelConfigTest, LlamaAttentionBias) {
  auto c = ParseModelConfig(LlamaJson(R"("attention_bias": true)"), "cfg.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->attention_bias);
  EXPECT_TRUE(c->o_proj_bias);  // Hugging Face's Llama puts it on o_proj too
}

TEST(ModelConfigTest, Llama31RopeScalingAndEosList) {
  // meta-llama/Llama-3.1-8B-Instruct.
  auto c = ParseModelConfig(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 128256})",
                            "llama31.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->max_position_embeddings, 131072);
  EXPECT_EQ(c->rope_scaling.type, ops::RopeScaling::Type::kLlama3);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_EQ(c->bos_token_id, 128000);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(128001, 128008, 128009));
  EXPECT_EQ(c->torch_dtype, DType::kBFloat16);
  EXPECT_FALSE(c->tie_word_embeddings);
}

TEST(ModelConfigTest, LinearRopeScalingWithTypeKey) {
  auto c = ParseModelConfig(LlamaJson(R"("rope_scaling": {"type": "linear", "factor": 2.0})"),
                            "cfg.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope_scaling.type, ops::RopeScaling::Type::kLinear);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 2.0);
}

TEST(ModelConfigTest, UnsupportedRopeScalingIsUnimplemented) {
  auto c = ParseModelConfig(LlamaJson(R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                    "original_max_position_embeddings": 32768})"),
                            "cfg.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(c.status().message(),
              AllOf(HasSubstr("cfg.json"), HasSubstr("rope_scaling"), HasSubstr("yarn")));
}

TEST(ModelConfigTest, Llama3RopeScalingMissingFieldNamed) {
  auto c = ParseModelConfig(LlamaJson(R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                    "low_freq_factor": 1.0, "original_max_position_embeddings": 8192})"),
                            "cfg.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("rope_scaling.high_freq_factor"));
}

TEST(ModelConfigTest, Mistral) {
  // mistralai/Mistral-7B-Instruct-v0.3 (sliding_window null).
  const std::string mistral = R"({
    "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
    "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": null,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 32768)";
  auto c = ParseModelConfig(mistral + "}", "mistral.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "mistral");
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);

  // Mistral-7B-v0.1 had a 4096-token window: refused, not ignored.
  auto windowed = ParseModelConfig(mistral + R"(, "sliding_window": 4096})", "mistral.json");
  ASSERT_FALSE(windowed.ok());
  EXPECT_EQ(windowed.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(windowed.status().message(),
              AllOf(HasSubstr("mistral.json"), HasSubstr("sliding_window"), HasSubstr("4096")));

  // A window as long as the context never slides.
  auto full = ParseModelConfig(mistral + R"(, "sliding_window": 32768})", "mistral.json");
  EXPECT_TRUE(full.ok()) << full.status();
}

TEST(ModelConfigTest, Qwen2HasQkvBias) {
  // Qwen/Qwen2.5-0.5B-Instruct.
  const std::string qwen2 = R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896,
    "initializer_range": 0.02, "intermediate_size": 4864, "max_position_embeddings": 32768,
    "max_window_layers": 21, "model_type": "qwen2", "num_attention_heads": 14,
    "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
    "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false,
    "vocab_size": 151936)";
  auto c = ParseModelConfig(qwen2 + "}", "qwen2.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "qwen2");
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_FALSE(c->o_proj_bias);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);

  auto windowed = ParseModelConfig(
      qwen2 + R"(, "use_sliding_window": true, "sliding_window": 4096})", "qwen2.json");
  ASSERT_FALSE(windowed.ok());
  EXPECT_EQ(windowed.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(windowed.status().message(), HasSubstr("sliding_window"));
}

TEST(ModelConfigTest, Qwen3HasQkNorm) {
  // Qwen/Qwen3-0.6B.
  auto c = ParseModelConfig(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
    "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
    "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false,
    "vocab_size": 151936})",
                            "qwen3.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "qwen3");
  EXPECT_EQ(c->head_dim, 128);  // not hidden / heads = 64
  EXPECT_EQ(c->q_size(), 2048);
  EXPECT_EQ(c->kv_size(), 1024);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_EQ(c->rope_scaling.type, ops::RopeScaling::Type::kNone);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645));
}

TEST(ModelConfigTest, UnknownArchitectureIsNamed) {
  auto c = ParseModelConfig(R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
      "n_embd": 768})",
                            "gpt2.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(c.status().message(), AllOf(HasSubstr("gpt2.json"), HasSubstr("GPT2LMHeadModel"),
                                          HasSubstr("LlamaForCausalLM")));
}

struct BadFieldCase {
  std::string extra;  // spliced into a valid Llama config (overrides the field)
  std::string field;  // must be named in the error
};

class BadFieldTest : public ::testing::TestWithParam<BadFieldCase> {};

TEST_P(BadFieldTest, ErrorNamesFileAndField) {
  auto c = ParseModelConfig(LlamaJson(GetParam().extra), "/models/x/config.json");
  ASSERT_FALSE(c.ok()) << GetParam().extra;
  EXPECT_THAT(c.status().message(),
              AllOf(HasSubstr("/models/x/config.json"), HasSubstr(GetParam().field)));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, BadFieldTest,
    ::testing::Values(BadFieldCase{R"("hidden_size": "256")", "hidden_size"},
                      BadFieldCase{R"("hidden_size": 0)", "hidden_size"},
                      BadFieldCase{R"("hidden_size": 25.5)", "hidden_size"},
                      BadFieldCase{R"("vocab_size": null)", "vocab_size"},
                      BadFieldCase{R"("num_key_value_heads": 3)", "num_attention_heads"},
                      BadFieldCase{R"("num_key_value_heads": -1)", "num_key_value_heads"},
                      BadFieldCase{R"("head_dim": 7)", "head_dim"},
                      BadFieldCase{R"("hidden_act": "gelu")", "hidden_act"},
                      BadFieldCase{R"("eos_token_id": 1000)", "eos_token_id"},
                      BadFieldCase{R"("eos_token_id": [2, "x"])", "eos_token_id"},
                      BadFieldCase{R"("bos_token_id": 5000)", "bos_token_id"},
                      BadFieldCase{R"("rms_norm_eps": "small")", "rms_norm_eps"},
                      BadFieldCase{R"("rms_norm_eps": 0)", "rms_norm_eps"},
                      BadFieldCase{R"("rope_theta": -1)", "rope_theta"},
                      BadFieldCase{R"("tie_word_embeddings": "yes")", "tie_word_embeddings"},
                      BadFieldCase{R"("torch_dtype": "int8")", "torch_dtype"},
                      BadFieldCase{R"("mlp_bias": true)", "mlp_bias"},
                      BadFieldCase{R"("architectures": [])", "architectures"},
                      BadFieldCase{R"("rope_scaling": 3)", "rope_scaling"},
                      BadFieldCase{R"("rope_scaling": {"factor": 2.0})",
                                   "rope_scaling.rope_type"}));

TEST(ModelConfigTest, MissingRequiredFieldIsNamed) {
  auto c = ParseModelConfig(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
      "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 300})",
                            "cfg.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(),
              AllOf(HasSubstr("cfg.json"), HasSubstr("intermediate_size"), HasSubstr("missing")));
}

TEST(ModelConfigTest, MalformedJson) {
  auto c = ParseModelConfig(R"({"hidden_size": 64,)", "broken.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), AllOf(HasSubstr("broken.json"), HasSubstr("JSON")));

  auto array = ParseModelConfig("[1, 2]", "array.json");
  ASSERT_FALSE(array.ok());
  EXPECT_THAT(array.status().message(), HasSubstr("array.json"));
}

TEST(ModelConfigTest, LoadFromMissingDirectoryIsNotFound) {
  auto c = LoadModelConfig("/nonexistent/model");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("/nonexistent/model/config.json"));
}

TEST(LlamaWeightNamesTest, HuggingFaceNames) {
  EXPECT_EQ(LlamaWeightNames::EmbedTokens(), "model.embed_tokens.weight");
  EXPECT_EQ(LlamaWeightNames::FinalNorm(), "model.norm.weight");
  EXPECT_EQ(LlamaWeightNames::LmHead(), "lm_head.weight");
  EXPECT_EQ(LlamaWeightNames::InputLayerNorm(0), "model.layers.0.input_layernorm.weight");
  EXPECT_EQ(LlamaWeightNames::PostAttentionLayerNorm(7),
            "model.layers.7.post_attention_layernorm.weight");
  EXPECT_EQ(LlamaWeightNames::QProj(3), "model.layers.3.self_attn.q_proj.weight");
  EXPECT_EQ(LlamaWeightNames::KProjBias(3), "model.layers.3.self_attn.k_proj.bias");
  EXPECT_EQ(LlamaWeightNames::OProj(12), "model.layers.12.self_attn.o_proj.weight");
  EXPECT_EQ(LlamaWeightNames::QNorm(1), "model.layers.1.self_attn.q_norm.weight");
  EXPECT_EQ(LlamaWeightNames::GateProj(2), "model.layers.2.mlp.gate_proj.weight");
  EXPECT_EQ(LlamaWeightNames::DownProj(2), "model.layers.2.mlp.down_proj.weight");
}

}  // namespace
}  // namespace tessera
