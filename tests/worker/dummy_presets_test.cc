// Tests of worker/model/dummy_presets.h: the --dummy presets' shapes.
#include "worker/model/dummy_presets.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(DummyPresetsTest, Presets) {
  EXPECT_THAT(DummyPresetNames(),
              ElementsAre("tiny", "smollm2-135m", "qwen3-0.6b", "qwen3-tiny", "llama3-8b"));
  for (const std::string& name : DummyPresetNames()) {
    auto c = DummyModelConfig(name);
    ASSERT_TRUE(c.ok()) << name << ": " << c.status();
    EXPECT_TRUE(c->Validate().ok()) << name;
    EXPECT_EQ(c->bos_token_id, 1) << name;  // the byte tokenizer's ids
    EXPECT_THAT(c->eos_token_ids, ElementsAre(2)) << name;
    EXPECT_EQ(c->hidden_act, "silu");
  }
  auto tiny = DummyModelConfig("tiny");
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->hidden_size, 64);
  EXPECT_EQ(tiny->intermediate_size, 192);
  EXPECT_EQ(tiny->num_hidden_layers, 2);
  EXPECT_EQ(tiny->num_attention_heads, 4);
  EXPECT_EQ(tiny->num_key_value_heads, 2);
  EXPECT_EQ(tiny->head_dim, 16);
  EXPECT_EQ(tiny->vocab_size, 512);
  EXPECT_EQ(tiny->max_position_embeddings, 2048);
  EXPECT_TRUE(tiny->tie_word_embeddings);
  EXPECT_DOUBLE_EQ(tiny->rms_norm_eps, 1e-5);

  auto smol = DummyModelConfig("smollm2-135m");
  ASSERT_TRUE(smol.ok());
  EXPECT_EQ(smol->hidden_size, 576);
  EXPECT_EQ(smol->intermediate_size, 1536);
  EXPECT_EQ(smol->num_hidden_layers, 30);
  EXPECT_EQ(smol->num_attention_heads, 9);
  EXPECT_EQ(smol->num_key_value_heads, 3);
  EXPECT_EQ(smol->head_dim, 64);
  EXPECT_EQ(smol->vocab_size, 49152);
  EXPECT_EQ(smol->max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(smol->rope_theta, 100000.0);
  EXPECT_TRUE(smol->tie_word_embeddings);

  auto qwen = DummyModelConfig("qwen3-0.6b");
  ASSERT_TRUE(qwen.ok());
  EXPECT_EQ(qwen->model_type, "qwen3");
  EXPECT_TRUE(qwen->qk_norm);
  EXPECT_EQ(qwen->hidden_size, 1024);
  EXPECT_EQ(qwen->intermediate_size, 3072);
  EXPECT_EQ(qwen->num_hidden_layers, 28);
  EXPECT_EQ(qwen->num_attention_heads, 16);
  EXPECT_EQ(qwen->num_key_value_heads, 8);
  EXPECT_EQ(qwen->head_dim, 128);
  EXPECT_EQ(qwen->vocab_size, 151936);
  EXPECT_EQ(qwen->max_position_embeddings, 40960);
  EXPECT_DOUBLE_EQ(qwen->rope_theta, 1e6);
  EXPECT_DOUBLE_EQ(qwen->rms_norm_eps, 1e-6);

  auto llama = DummyModelConfig("llama3-8b");
  ASSERT_TRUE(llama.ok());
  EXPECT_EQ(llama->hidden_size, 4096);
  EXPECT_EQ(llama->intermediate_size, 14336);
  EXPECT_EQ(llama->num_hidden_layers, 32);
  EXPECT_EQ(llama->num_attention_heads, 32);
  EXPECT_EQ(llama->num_key_value_heads, 8);
  EXPECT_EQ(llama->vocab_size, 128256);
  EXPECT_DOUBLE_EQ(llama->rope_theta, 500000.0);
  EXPECT_FALSE(llama->tie_word_embeddings);

  auto unknown = DummyModelConfig("gpt-5");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), AllOf(HasSubstr("gpt-5"), HasSubstr("smollm2-135m")));
}

}  // namespace
}  // namespace tessera
