// router/openai/models_tokenize.h: GET /v1/models, POST /tokenize and POST
// /detokenize with the byte tokenizer and with real tokenizers (Qwen3's
// goldens from Hugging Face, stories260K), and the echo text of token-id
// prompts.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/openai/models_tokenize.h"
#include "router/openai/request.h"
#include "tests/testing/tokenizers.h"

namespace tessera::router::openai {
namespace {

using Json = nlohmann::ordered_json;

const std::vector<std::string> kServed = {"tiny", "alias"};

api::RequestLimits Limits(int32_t vocab) {
  api::RequestLimits limits;
  limits.model_name = "tiny";
  limits.vocab_size = vocab;
  limits.max_model_len = 256;
  return limits;
}

std::shared_ptr<const ModelText> ByteText() {
  static const std::shared_ptr<const ModelText> text = *ModelText::Load(
      {},
      std::string("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
                  "{% if add_generation_prompt %}<assistant>{% endif %}"),
      512);
  return text;
}

Json Ok(const ApiOr<std::string>& r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? Json::parse(*r) : Json();
}

TEST(OpenAiModels, OneEntryPerServedName) {
  v1::ModelInfo info;
  info.set_id("tiny");
  info.set_max_model_len(256);
  Json body = Json::parse(ModelsBody(kServed, info, 1700000000));
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), 2u);
  EXPECT_EQ(body["data"][1], Json::parse(R"({"id":"alias","object":"model","created":1700000000,
      "owned_by":"tessera","root":"tiny","parent":null,"max_model_len":256})"));
}

TEST(OpenAiTokenize, ByteTokenizerTextAndChat) {
  const ModelText& text = *ByteText();
  Json r = Ok(TokenizeBody(R"({"model":"alias","prompt":"hi"})", text, Limits(512), kServed));
  EXPECT_EQ(
      r, Json::parse(R"({"count":3,"max_model_len":256,"tokens":[1,107,108],"token_strs":null})"));
  r = Ok(TokenizeBody(R"({"prompt":"hi","add_special_tokens":false})", text, Limits(512), kServed));
  EXPECT_EQ(r["tokens"], Json::parse("[107,108]"));
  // Chat: rendered with the template, no special tokens unless asked.
  r = Ok(
      TokenizeBody(R"({"messages":[{"role":"user","content":"a"}],"add_generation_prompt":false})",
                   text, Limits(512), kServed));
  std::vector<int32_t> expected;
  for (char c : std::string("<user>a")) expected.push_back(static_cast<unsigned char>(c) + 3);
  EXPECT_EQ(r["tokens"].get<std::vector<int32_t>>(), expected);
  r = Ok(TokenizeBody(R"({"messages":[{"role":"user","content":"a"}],"add_special_tokens":true})",
                      text, Limits(512), kServed));
  EXPECT_EQ(r["tokens"][0], 1);  // BOS
  EXPECT_EQ(r["count"], 1 + 7 + 11);
}

TEST(OpenAiTokenize, Errors) {
  const ModelText& text = *ByteText();
  auto err = [&](const char* body) {
    ApiOr<std::string> r = TokenizeBody(body, text, Limits(512), kServed);
    EXPECT_FALSE(r.ok()) << body;
    return r.ok() ? ApiError{} : r.error();
  };
  EXPECT_EQ(err(R"({"model":"gpt-4","prompt":"x"})").http_status, 404);
  EXPECT_EQ(err(R"({"model":"gpt-4","prompt":"x"})").param, "model");
  EXPECT_EQ(err(R"({})").param, "prompt");
  EXPECT_EQ(err(R"({"prompt":[1,2]})").param, "prompt");
  EXPECT_EQ(err(R"({"prompt":"x","add_special_tokens":"no"})").param, "add_special_tokens");
  EXPECT_EQ(err(R"({"messages":[]})").param, "messages");
  EXPECT_EQ(err(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})").param,
            "messages[0].content[0].type");
  EXPECT_EQ(
      err(R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})").param,
      "tools");
  EXPECT_EQ(err(R"({"prompt":"x","return_token_strs":true})").param, "return_token_strs");
  EXPECT_EQ(err("nope").http_status, 400);
  // A model without a chat template: 400 from ModelText, naming messages.
  std::shared_ptr<const ModelText> plain = *ModelText::Load({}, std::nullopt, 512);
  ApiOr<std::string> r =
      TokenizeBody(R"({"messages":[{"role":"user","content":"x"}]})", *plain, Limits(512), kServed);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().http_status, 400);
  EXPECT_EQ(r.error().param, "messages");
  EXPECT_NE(r.error().message.find("--chat-template"), std::string::npos);
}

TEST(OpenAiDetokenize, ByteTokenizer) {
  const ModelText& text = *ByteText();
  EXPECT_EQ(Ok(DetokenizeBody(R"({"tokens":[1,107,108,2]})", text, Limits(512), kServed)),
            Json::parse(R"({"prompt":"<s>hi</s>"})"));
  EXPECT_EQ(Ok(DetokenizeBody(R"({"tokens":[]})", text, Limits(512), kServed))["prompt"], "");
  // Invalid UTF-8 decodes to U+FFFD.
  EXPECT_EQ(Ok(DetokenizeBody(R"({"tokens":[198]})", text, Limits(512), kServed))["prompt"],
            "\xEF\xBF\xBD");
  for (const char* bad :
       {R"({"tokens":[512]})", R"({"tokens":[-1]})", R"({"tokens":[1.5]})", R"({"tokens":["a"]})",
        R"({"tokens":"1"})", R"({})", R"({"tokens":[1e300]})"}) {
    ApiOr<std::string> r = DetokenizeBody(bad, text, Limits(512), kServed);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().param, "tokens") << bad;
    EXPECT_EQ(r.error().http_status, 400);
  }
  // The limits' vocabulary is the bound (the router validates against it).
  EXPECT_FALSE(DetokenizeBody(R"({"tokens":[300]})", text, Limits(300), kServed).ok());
  EXPECT_EQ(DetokenizeBody(R"({"model":"x","tokens":[1]})", text, Limits(512), kServed)
                .error()
                .http_status,
            404);
}

std::shared_ptr<const ModelText> RealText(const std::string& name) {
  absl::StatusOr<std::shared_ptr<const ModelText>> text =
      ModelText::LoadFromDir(testing::TokenizerDir(name), "", 200000);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : nullptr;
}

TEST(OpenAiTokenize, Qwen3GoldensRoundTrip) {
  TESSERA_REQUIRE_TOKENIZER("qwen3");
  std::shared_ptr<const ModelText> text = RealText("qwen3");
  ASSERT_NE(text, nullptr);
  const api::RequestLimits limits = Limits(text->tokenizer().vocab_size());
  int checked = 0;
  for (const nlohmann::json& g :
       testing::ReadJsonl(testing::TokenizerDir("qwen3") + "/golden.jsonl")) {
    Json body = {{"prompt", g["text"]}, {"add_special_tokens", false}};
    Json r = Ok(TokenizeBody(body.dump(), *text, limits, kServed));
    EXPECT_EQ(r["tokens"], Json(g["ids"])) << g["text"];
    Json d = Ok(DetokenizeBody(Json({{"tokens", g["ids"]}}).dump(), *text, limits, kServed));
    EXPECT_EQ(d["prompt"], Json(g["decoded_special"])) << g["text"];
    ++checked;
  }
  for (const nlohmann::json& g :
       testing::ReadJsonl(testing::TokenizerDir("qwen3") + "/chat_golden.jsonl")) {
    Json body = {{"messages", g["messages"]},
                 {"add_generation_prompt", g["add_generation_prompt"]},
                 {"chat_template_kwargs", g["extra"]}};
    Json r = Ok(TokenizeBody(body.dump(), *text, limits, kServed));
    EXPECT_EQ(r["tokens"], Json(g["ids"])) << g["messages"].dump();
    ++checked;
  }
  EXPECT_GT(checked, 200);
}

TEST(OpenAiTokenize, Stories260KAddsBos) {
  TESSERA_REQUIRE_TOKENIZER("stories260K");
  std::shared_ptr<const ModelText> text = RealText("stories260K");
  ASSERT_NE(text, nullptr);
  const api::RequestLimits limits = Limits(text->tokenizer().vocab_size());
  Json r = Ok(TokenizeBody(R"({"prompt":"Once upon a time"})", *text, limits, kServed));
  ASSERT_GT(r["count"].get<int>(), 1);
  EXPECT_EQ(r["tokens"][0], 1);  // <s>
  Json d = Ok(DetokenizeBody(Json({{"tokens", r["tokens"]}}).dump(), *text, limits, kServed));
  EXPECT_EQ(d["prompt"].get<std::string>().find("Once upon a time") != std::string::npos, true)
      << d.dump();
  // Echo of a token-id prompt decodes it the same way.
  ApiOr<ParsedRequest> parsed =
      ParseRequest(Endpoint::kCompletions, Json({{"prompt", r["tokens"]}, {"echo", true}}).dump());
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(ResolveEchoText(*parsed, text->tokenizer()).ok());
  EXPECT_EQ(parsed->echo_text[0], d["prompt"]);
}

}  // namespace
}  // namespace tessera::router::openai
