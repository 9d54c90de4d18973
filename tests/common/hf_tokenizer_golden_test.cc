// The Hugging Face tokenizer against goldens made by Hugging Face's own Rust
// `tokenizers` (../shared/tokenizers/*/golden.jsonl) and llama2.c
// (../shared/models/stories260K/text_reference.jsonl): every line, every
// field, plus streaming through IncrementalDecoder one token at a time.
#include <string>
#include <vector>

#include "common/tokenizer.h"
#include "common/tokenizer/loader.h"
#include "gtest/gtest.h"
#include "tests/testing/tokenizers.h"

namespace tessera {
namespace {

using testing::ReadJsonl;
using testing::SharedTokenizer;
using testing::TokenizerDir;

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, EveryLineMatchesAllFourFields) {
  TESSERA_REQUIRE_TOKENIZER(GetParam());
  const Tokenizer& tok = *SharedTokenizer(GetParam()).tokenizer;
  const auto lines = ReadJsonl(TokenizerDir(GetParam()) + "/golden.jsonl");
  ASSERT_GE(lines.size(), 200u);
  int failures = 0;
  for (size_t i = 0; i < lines.size() && failures < 10; ++i) {
    const auto& g = lines[i];
    const std::string text = g.at("text").get<std::string>();
    const auto ids = g.at("ids").get<std::vector<int32_t>>();
    const auto ids_special = g.at("ids_special").get<std::vector<int32_t>>();
    auto got = tok.Encode(text, /*add_special_tokens=*/false);
    auto got_special = tok.Encode(text, /*add_special_tokens=*/true);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got_special.ok()) << got_special.status();
    auto decoded = tok.Decode(ids_special, /*skip_special=*/true);
    auto decoded_special = tok.Decode(ids_special, /*skip_special=*/false);
    ASSERT_TRUE(decoded.ok() && decoded_special.ok());
    const bool ok = *got == ids && *got_special == ids_special &&
                    *decoded == g.at("decoded").get<std::string>() &&
                    *decoded_special == g.at("decoded_special").get<std::string>();
    EXPECT_EQ(*got, ids) << "line " << i << ": " << g.at("text").dump();
    EXPECT_EQ(*got_special, ids_special) << "line " << i << ": " << g.at("text").dump();
    EXPECT_EQ(*decoded, g.at("decoded").get<std::string>()) << "line " << i;
    EXPECT_EQ(*decoded_special, g.at("decoded_special").get<std::string>()) << "line " << i;
    failures += !ok;
  }
}

// Decodes `ids` one token at a time and returns the concatenated stream.
std::string Stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  IncrementalDecoder dec(&tok, skip_special);
  std::string out;
  for (int32_t id : ids) {
    auto piece = dec.Append(std::vector<int32_t>{id});
    EXPECT_TRUE(piece.ok()) << piece.status();
    if (piece.ok()) out += *piece;
  }
  return out + dec.Flush();
}

TEST_P(GoldenTest, StreamingConcatenatesToTheOneShotDecode) {
  TESSERA_REQUIRE_TOKENIZER(GetParam());
  const Tokenizer& tok = *SharedTokenizer(GetParam()).tokenizer;
  const auto lines = ReadJsonl(TokenizerDir(GetParam()) + "/golden.jsonl");
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto ids = lines[i].at("ids_special").get<std::vector<int32_t>>();
    EXPECT_EQ(Stream(tok, ids, true), lines[i].at("decoded").get<std::string>()) << "line " << i;
    EXPECT_EQ(Stream(tok, ids, false), lines[i].at("decoded_special").get<std::string>())
        << "line " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, GoldenTest, ::testing::Values("qwen3", "mistral"));

TEST(StoriesTokenizerTest, PromptTextGivesTheReferenceIdsAndGenerationDecodes) {
  TESSERA_REQUIRE_TOKENIZER("stories260K");
  const Tokenizer& tok = *SharedTokenizer("stories260K").tokenizer;
  const auto lines = ReadJsonl(TokenizerDir("stories260K") + "/text_reference.jsonl");
  ASSERT_FALSE(lines.empty());
  for (const auto& r : lines) {
    auto ids = tok.Encode(r.at("prompt_text").get<std::string>(), /*add_special_tokens=*/true);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, r.at("prompt").get<std::vector<int32_t>>()) << r.at("prompt_text");
    // The continuation's text is what run.c printed: the generated ids
    // decoded after the prompt (their leading space is not stripped).
    const auto generated = r.at("generated").get<std::vector<int32_t>>();
    IncrementalDecoder dec(&tok);
    auto prompt_piece = dec.Append(*ids);
    ASSERT_TRUE(prompt_piece.ok());
    std::string text;
    for (int32_t id : generated) {
      auto piece = dec.Append(std::vector<int32_t>{id});
      ASSERT_TRUE(piece.ok());
      text += *piece;
    }
    text += dec.Flush();
    EXPECT_EQ(text, r.at("generated_text").get<std::string>());
  }
}

TEST(TokenizerInfoTest, ConfigFieldsOfTheSharedTokenizers) {
  TESSERA_REQUIRE_TOKENIZER("qwen3");
  TESSERA_REQUIRE_TOKENIZER("mistral");
  const TokenizerInfo& qwen = SharedTokenizer("qwen3").info;
  EXPECT_FALSE(qwen.bos_id.has_value());
  EXPECT_EQ(qwen.eos_ids, std::vector<int32_t>{151645});  // <|im_end|>
  EXPECT_EQ(qwen.pad_token, "<|endoftext|>");
  EXPECT_FALSE(qwen.bos_token.has_value());
  EXPECT_NE(qwen.chat_template.find("<|im_start|>"), std::string::npos);
  EXPECT_EQ(qwen.model_max_length, 131072);
  EXPECT_FALSE(qwen.byte_tokenizer);
  EXPECT_EQ(qwen.hash.size(), 32u);
  const TokenizerInfo& mistral = SharedTokenizer("mistral").info;
  EXPECT_EQ(mistral.bos_id, 1);
  EXPECT_EQ(mistral.eos_ids, std::vector<int32_t>{2});
  EXPECT_EQ(mistral.bos_token, "<s>");
  EXPECT_EQ(mistral.unk_token, "<unk>");
  // Its config has no template; chat_template.jinja beside it gives one.
  EXPECT_NE(mistral.chat_template.find("raise_exception"), std::string::npos);
  EXPECT_FALSE(mistral.model_max_length.has_value());  // 1e30: unlimited
  EXPECT_NE(mistral.hash, qwen.hash);
  EXPECT_EQ(SharedTokenizer("mistral").tokenizer->bos_id(), 1);
  EXPECT_TRUE(SharedTokenizer("mistral").tokenizer->IsSpecial(2));
  EXPECT_FALSE(SharedTokenizer("qwen3").tokenizer->IsSpecial(151667));  // </think>
}

}  // namespace
}  // namespace tessera
