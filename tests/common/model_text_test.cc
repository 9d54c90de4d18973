// ModelText: the prompt of a request as token ids (text, chat, ids), the
// chat goldens' ids end to end (render with the model's template, then
// tokenize without special tokens), the --chat-template override, and the
// files a worker serves to the router (round trip, hash checks).
#include "common/model_text.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/tokenizers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

v1::GenerateRequest ChatRequest(const nlohmann::json& golden) {
  v1::GenerateRequest r;
  v1::ChatPrompt* chat = r.mutable_chat();
  for (const nlohmann::json& m : golden.at("messages")) {
    v1::ChatMessage* msg = chat->add_messages();
    msg->set_role(m.at("role"));
    msg->set_content(m.at("content"));
    if (m.contains("reasoning_content")) msg->set_reasoning_content(m.at("reasoning_content"));
  }
  chat->set_add_generation_prompt(golden.at("add_generation_prompt"));
  if (golden.contains("extra") && !golden.at("extra").empty()) {
    chat->set_chat_template_kwargs_json(golden.at("extra").dump());
  }
  return r;
}

std::shared_ptr<const ModelText> LoadShared(const std::string& name,
                                            const std::string& chat_template_file = "") {
  absl::StatusOr<std::shared_ptr<const ModelText>> text =
      ModelText::LoadFromDir(testing::TokenizerDir(name), chat_template_file, 200000);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : nullptr;
}

class ChatGoldenTest : public ::testing::TestWithParam<std::string> {};

// Every line of chat_golden.jsonl: the prompt ids (or the template's error).
TEST_P(ChatGoldenTest, PromptIdsMatch) {
  TESSERA_REQUIRE_TOKENIZER(GetParam());
  std::shared_ptr<const ModelText> text = LoadShared(GetParam());
  ASSERT_NE(text, nullptr);
  ASSERT_TRUE(text->has_chat_template());
  int checked = 0;
  for (const nlohmann::json& g :
       testing::ReadJsonl(testing::TokenizerDir(GetParam()) + "/chat_golden.jsonl")) {
    SCOPED_TRACE(g.dump().substr(0, 300));
    absl::StatusOr<std::vector<int32_t>> ids = text->PromptIds(ChatRequest(g));
    if (g.at("rendered").is_null()) {
      ASSERT_FALSE(ids.ok());
      EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(ids.status().message(), g.at("error").get<std::string>());
    } else {
      ASSERT_TRUE(ids.ok()) << ids.status();
      EXPECT_EQ(*ids, g.at("ids").get<std::vector<int32_t>>());
    }
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, ChatGoldenTest, ::testing::Values("qwen3", "mistral"));

TEST(ModelTextTest, TextPromptsAddSpecialTokensUnlessTold) {
  TESSERA_REQUIRE_TOKENIZER("stories260K");
  std::shared_ptr<const ModelText> text = LoadShared("stories260K");
  ASSERT_NE(text, nullptr);
  const nlohmann::json ref =
      testing::ReadJsonl(testing::TokenizerDir("stories260K") + "/text_reference.jsonl").at(0);
  v1::GenerateRequest r;
  r.set_text(ref.at("prompt_text"));
  absl::StatusOr<std::vector<int32_t>> ids = text->PromptIds(r);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, ref.at("prompt").get<std::vector<int32_t>>());  // BOS first
  r.set_add_special_tokens(false);
  ids = text->PromptIds(r);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, std::vector<int32_t>(ref.at("prompt").begin() + 1, ref.at("prompt").end()));
  r.mutable_token_ids()->add_ids(7);
  ids = text->PromptIds(r);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, std::vector<int32_t>{7});
  EXPECT_FALSE(text->PromptIds(v1::GenerateRequest()).ok());
}

TEST(ModelTextTest, ChatNeedsATemplateAndValidKwargs) {
  TESSERA_REQUIRE_TOKENIZER("stories260K");
  std::shared_ptr<const ModelText> text = LoadShared("stories260K");
  ASSERT_NE(text, nullptr);
  EXPECT_FALSE(text->has_chat_template());
  v1::GenerateRequest r;
  r.mutable_chat()->add_messages()->set_content("hi");
  absl::StatusOr<std::vector<int32_t>> ids = text->PromptIds(r);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ids.status().message(), HasSubstr("--chat-template"));

  std::shared_ptr<const ModelText> with = LoadShared(
      "stories260K", std::string(TESSERA_SOURCE_DIR) + "/tests/data/stories260k_chat.jinja");
  ASSERT_NE(with, nullptr);
  EXPECT_TRUE(with->has_chat_template());
  EXPECT_NE(with->hash(), text->hash());
  r.mutable_chat()->mutable_messages(0)->set_role("user");
  ids = with->PromptIds(r);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_FALSE(ids->empty());
  r.mutable_chat()->set_chat_template_kwargs_json("[1, 2]");
  EXPECT_THAT(with->PromptIds(r).status().message(), HasSubstr("chat_template_kwargs_json"));
  r.mutable_chat()->clear_chat_template_kwargs_json();
  r.mutable_chat()->mutable_messages(0)->set_fields_json("nope");
  EXPECT_THAT(with->PromptIds(r).status().message(), HasSubstr("messages[0].fields_json"));
  r.mutable_chat()->clear_messages();
  EXPECT_THAT(with->PromptIds(r).status().message(), HasSubstr("at least one message"));
}

TEST(ModelTextTest, ServedFilesRoundTripAndAreChecked) {
  TESSERA_REQUIRE_TOKENIZER("qwen3");
  std::shared_ptr<const ModelText> text = LoadShared("qwen3");
  ASSERT_NE(text, nullptr);
  v1::GetTokenizerResponse served;
  text->ToProto(&served);
  EXPECT_EQ(served.tokenizer_hash(), text->hash());
  absl::StatusOr<std::shared_ptr<const ModelText>> copy = ModelText::FromProto(served, 200000);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ((*copy)->hash(), text->hash());
  v1::GenerateRequest r;
  r.set_text("Hello world! <|im_start|> 12345");
  EXPECT_EQ(*(*copy)->PromptIds(r), *text->PromptIds(r));

  v1::GetTokenizerResponse tampered = served;
  tampered.mutable_files(0)->mutable_content()->append(" ");
  EXPECT_FALSE(ModelText::FromProto(tampered, 200000).ok());
  v1::GetTokenizerResponse unknown = served;
  unknown.add_files()->set_name("evil.bin");
  absl::StatusOr<std::shared_ptr<const ModelText>> bad = ModelText::FromProto(unknown, 200000);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown file"));
}

TEST(ModelTextTest, TheByteTokenizerHasAnEmptyHash) {
  absl::StatusOr<std::shared_ptr<const ModelText>> bytes = ModelText::Load({}, std::nullopt, 512);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ((*bytes)->hash(), "");
  EXPECT_TRUE((*bytes)->info().byte_tokenizer);
  v1::GetTokenizerResponse served;
  (*bytes)->ToProto(&served);
  EXPECT_EQ(served.files_size(), 0);
  EXPECT_TRUE(ModelText::FromProto(served, 512).ok());
  EXPECT_FALSE(ModelText::LoadFromDir("/nonexistent/tokenizer", "", 512).ok());
}

}  // namespace
}  // namespace tessera
