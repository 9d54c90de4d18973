// router/openai/request.h: OpenAI request bodies -> GenerateRequest, every
// field mapped, prompt forms, echo text. Refusals (unserved fields, type and
// shape errors): openai_request_errors_test.cc.
#include <string>
#include <vector>

#include "common/api/request_validation.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/openai/api_error.h"
#include "router/openai/request.h"
#include "tests/router/openai_request_test_util.h"

namespace tessera::router::openai {
namespace {

using request_testing::Chat;
using request_testing::Completion;
using request_testing::Json;
using request_testing::MustFail;
using request_testing::MustParse;

TEST(OpenAiRequest, ChatMapsEveryField) {
  ParsedRequest r =
      MustParse(Endpoint::kChat, Chat({{"max_tokens", 5},
                                       {"max_completion_tokens", 7},
                                       {"temperature", 0.5},
                                       {"top_p", 0.9},
                                       {"top_k", 40},
                                       {"min_p", 0.05},
                                       {"n", 2},
                                       {"seed", 42},
                                       {"stop", {"\n", "END"}},
                                       {"stop_token_ids", {7, 8}},
                                       {"presence_penalty", 0.25},
                                       {"frequency_penalty", -0.5},
                                       {"repetition_penalty", 1.1},
                                       {"ignore_eos", true},
                                       {"priority", -3},
                                       {"user", "u1"},
                                       {"logprobs", true},
                                       {"top_logprobs", 3},
                                       {"stream", true},
                                       {"stream_options", {{"include_usage", true}}},
                                       {"add_generation_prompt", false},
                                       {"chat_template_kwargs", {{"enable_thinking", false}}},
                                       {"request_id", "abc"}}));
  EXPECT_EQ(r.endpoint, Endpoint::kChat);
  ASSERT_EQ(r.prompts.size(), 1u);
  const v1::GenerateRequest& g = r.prompts[0];
  EXPECT_EQ(g.model(), "m");
  EXPECT_EQ(g.request_id(), "abc");
  EXPECT_TRUE(g.return_text());
  EXPECT_EQ(g.priority(), -3);
  ASSERT_TRUE(g.has_chat());
  EXPECT_FALSE(g.chat().add_generation_prompt());
  EXPECT_EQ(g.chat().chat_template_kwargs_json(), R"({"enable_thinking":false})");
  const v1::SamplingParams& s = g.sampling();
  EXPECT_EQ(s.max_tokens(), 7);  // max_completion_tokens wins
  EXPECT_FLOAT_EQ(s.temperature(), 0.5f);
  EXPECT_FLOAT_EQ(s.top_p(), 0.9f);
  EXPECT_EQ(s.top_k(), 40);
  EXPECT_FLOAT_EQ(s.min_p(), 0.05f);
  EXPECT_EQ(s.n(), 2);
  EXPECT_EQ(s.seed(), 42u);
  EXPECT_EQ(std::vector<std::string>(s.stop().begin(), s.stop().end()),
            (std::vector<std::string>{"\n", "END"}));
  EXPECT_EQ(std::vector<int32_t>(s.stop_token_ids().begin(), s.stop_token_ids().end()),
            (std::vector<int32_t>{7, 8}));
  EXPECT_FLOAT_EQ(s.presence_penalty(), 0.25f);
  EXPECT_FLOAT_EQ(s.frequency_penalty(), -0.5f);
  EXPECT_FLOAT_EQ(s.repetition_penalty(), 1.1f);
  EXPECT_TRUE(s.ignore_eos());
  EXPECT_EQ(s.logprobs(), 3);
  EXPECT_EQ(r.n, 2);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.logprobs, LogprobsMode::kChat);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_EQ(r.user, "u1");
  EXPECT_EQ(r.model, "m");
}

TEST(OpenAiRequest, ChatDefaultsLeaveFieldsUnset) {
  ParsedRequest r = MustParse(Endpoint::kChat, Chat());
  const v1::GenerateRequest& g = r.prompts[0];
  EXPECT_TRUE(g.return_text());
  EXPECT_FALSE(g.chat().has_add_generation_prompt());  // ModelText's default: true
  EXPECT_FALSE(g.has_add_special_tokens());
  EXPECT_FALSE(g.sampling().has_max_tokens());   // filled by api::FillDefaultMaxTokens
  EXPECT_FALSE(g.sampling().has_temperature());  // the wire default, 1.0
  EXPECT_FALSE(g.sampling().has_logprobs());
  EXPECT_FALSE(g.sampling().has_n());
  EXPECT_TRUE(g.request_id().empty());
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.logprobs, LogprobsMode::kNone);
  // max_tokens alone, and explicit nulls, which mean "not given".
  EXPECT_EQ(
      MustParse(Endpoint::kChat, Chat({{"max_tokens", 9}})).prompts[0].sampling().max_tokens(), 9);
  ParsedRequest nulls = MustParse(Endpoint::kChat, Chat({{"temperature", nullptr},
                                                         {"stop", nullptr},
                                                         {"n", nullptr},
                                                         {"max_completion_tokens", nullptr},
                                                         {"tools", nullptr}}));
  EXPECT_FALSE(nulls.prompts[0].sampling().has_temperature());
  EXPECT_FALSE(nulls.prompts[0].sampling().has_max_tokens());
}

TEST(OpenAiRequest, LogprobsZeroStillAsksForTheChosenToken) {
  ParsedRequest chat = MustParse(Endpoint::kChat, Chat({{"logprobs", true}}));
  EXPECT_EQ(chat.top_logprobs, 0);
  EXPECT_EQ(chat.prompts[0].sampling().logprobs(), 1);
  ParsedRequest cmpl = MustParse(Endpoint::kCompletions, Completion({{"logprobs", 0}}));
  EXPECT_EQ(cmpl.logprobs, LogprobsMode::kCompletions);
  EXPECT_EQ(cmpl.top_logprobs, 0);
  EXPECT_EQ(cmpl.prompts[0].sampling().logprobs(), 1);
  EXPECT_EQ(MustParse(Endpoint::kCompletions, Completion({{"logprobs", 5}}))
                .prompts[0]
                .sampling()
                .logprobs(),
            5);
  EXPECT_EQ(MustParse(Endpoint::kChat, Chat({{"logprobs", false}})).logprobs, LogprobsMode::kNone);
}

TEST(OpenAiRequest, SeedsCoverSixtyFourBits) {
  EXPECT_EQ(MustParse(Endpoint::kChat, Chat({{"seed", -1}})).prompts[0].sampling().seed(),
            UINT64_MAX);
  EXPECT_EQ(MustParse(Endpoint::kChat, Chat({{"seed", UINT64_MAX}})).prompts[0].sampling().seed(),
            UINT64_MAX);
  EXPECT_EQ(MustParse(Endpoint::kChat, Chat({{"seed", 7.0}})).prompts[0].sampling().seed(), 7u);
}

TEST(OpenAiRequest, MessagesKeepTheirFields) {
  Json messages = Json::parse(R"([
    {"role": "system", "content": [{"type": "text", "text": "A"}, "B", {"type": "text", "text": "C"}]},
    {"role": "user", "name": "bob", "content": "hi", "x_extra": {"k": 1}},
    {"role": "assistant", "content": null, "reasoning_content": "think", "tool_calls": [
      {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
    {"role": "tool", "content": "42", "tool_call_id": "c1", "name": null},
    {"role": "developer", "content": [{"type": "text"}, {"type": "refusal", "refusal": "no"}]}
  ])");
  ParsedRequest r = MustParse(Endpoint::kChat, Chat({{"messages", messages}}));
  const v1::ChatPrompt& chat = r.prompts[0].chat();
  ASSERT_EQ(chat.messages_size(), 5);
  EXPECT_EQ(chat.messages(0).content(), "A\nB\nC");  // vLLM joins text parts with "\n"
  EXPECT_TRUE(chat.messages(0).fields_json().empty());
  EXPECT_EQ(chat.messages(1).name(), "bob");
  EXPECT_EQ(chat.messages(1).fields_json(), R"({"x_extra":{"k":1}})");
  EXPECT_EQ(chat.messages(2).content(), "");
  EXPECT_EQ(chat.messages(2).reasoning_content(), "think");
  // Arguments given as a JSON string become an object, as vLLM hands them to templates.
  EXPECT_EQ(Json::parse(chat.messages(2).fields_json())["tool_calls"][0]["function"]["arguments"],
            Json({{"a", 1}}));
  EXPECT_EQ(chat.messages(3).role(), "tool");
  EXPECT_FALSE(chat.messages(3).has_name());  // null fields are left out
  EXPECT_EQ(chat.messages(3).fields_json(), R"({"tool_call_id":"c1"})");
  EXPECT_EQ(chat.messages(4).content(), "no");  // a text part without text is skipped
}

TEST(OpenAiRequest, MessageShapeErrorsNameThePath) {
  struct Case {
    const char* messages;
    const char* param;
  };
  const Case cases[] = {
      {R"([])", "messages"},
      {R"("hi")", "messages"},
      {R"([1])", "messages[0]"},
      {R"([{"content": "x"}])", "messages[0].role"},
      {R"([{"role": 3, "content": "x"}])", "messages[0].role"},
      {R"([{"role": "user", "content": 5}])", "messages[0].content"},
      {R"([{"role": "user", "content": [{"type": "text", "text": "a"},
           {"type": "image_url", "image_url": {"url": "http://x"}}]}])",
       "messages[0].content[1].type"},
      {R"([{"role": "user", "content": [{"text": "a"}]}])", "messages[0].content[0].type"},
      {R"([{"role": "user", "content": [{"type": "text", "text": 1}]}])",
       "messages[0].content[0].text"},
      {R"([{"role": "user", "content": [7]}])", "messages[0].content[0]"},
      {R"([{"role": "user", "content": "x", "name": 1}])", "messages[0].name"},
  };
  for (const Case& c : cases) {
    Json body = Chat();
    body["messages"] = Json::parse(c.messages);
    EXPECT_EQ(MustFail(Endpoint::kChat, body.dump()).param, c.param) << c.messages;
  }
}

TEST(OpenAiRequest, CompletionPromptForms) {
  ParsedRequest text = MustParse(Endpoint::kCompletions, Completion());
  ASSERT_EQ(text.prompts.size(), 1u);
  EXPECT_EQ(text.prompts[0].text(), "Once upon");
  EXPECT_EQ(text.prompts[0].sampling().max_tokens(), 16);  // absent: OpenAI's and vLLM's 16
  EXPECT_FALSE(text.prompts[0].has_add_special_tokens());  // ModelText's default: true

  ParsedRequest texts = MustParse(Endpoint::kCompletions,
                                  Completion({{"prompt", {"a", "b", "c"}}, {"request_id", "r"}}));
  ASSERT_EQ(texts.prompts.size(), 3u);
  EXPECT_EQ(texts.prompts[2].text(), "c");
  EXPECT_EQ(texts.prompts[1].request_id(), "r-1");

  ParsedRequest ids = MustParse(Endpoint::kCompletions, Completion({{"prompt", {1, 2, 3}}}));
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_EQ(ids.prompts[0].token_ids().ids_size(), 3);

  ParsedRequest id_lists = MustParse(
      Endpoint::kCompletions,
      Completion(
          {{"prompt", {{1, 2}, {3}}}, {"max_tokens", nullptr}, {"add_special_tokens", false}}));
  ASSERT_EQ(id_lists.prompts.size(), 2u);
  EXPECT_EQ(id_lists.prompts[1].token_ids().ids(0), 3);
  EXPECT_FALSE(id_lists.prompts[0].sampling().has_max_tokens());  // null: as many as fit
  EXPECT_FALSE(id_lists.prompts[1].add_special_tokens());
  for (const v1::GenerateRequest& g : id_lists.prompts) EXPECT_TRUE(g.return_text());

  for (const char* bad :
       {R"([])", R"(5)", R"({"a": 1})", R"(["a", 1])", R"([1, "a"])", R"([[1], "a"])",
        R"([[1, "x"]])", R"([1.5])", R"([4294967296])", R"(true)"}) {
    Json body = Completion();
    body["prompt"] = Json::parse(bad);
    EXPECT_EQ(MustFail(Endpoint::kCompletions, body.dump()).param, "prompt") << bad;
  }
  Json missing = Completion();
  missing.erase("prompt");
  EXPECT_EQ(MustFail(Endpoint::kCompletions, missing.dump()).param, "prompt");
}

TEST(OpenAiRequest, RequestIdOptionWinsOverTheBody) {
  ParseOptions options;
  options.request_id = "hdr";
  EXPECT_EQ(
      MustParse(Endpoint::kChat, Chat({{"request_id", "body"}}), options).prompts[0].request_id(),
      "hdr");
}

TEST(OpenAiRequest, EchoText) {
  ParsedRequest r =
      MustParse(Endpoint::kCompletions, Completion({{"prompt", {"x", "y"}}, {"echo", true}}));
  EXPECT_TRUE(r.echo);
  EXPECT_EQ(r.echo_text, (std::vector<std::string>{"x", "y"}));
  ParsedRequest ids = MustParse(Endpoint::kCompletions,
                                Completion({{"prompt", {{3 + 'h', 3 + 'i'}}}, {"echo", true}}));
  std::unique_ptr<Tokenizer> bytes = MakeByteTokenizer(512);
  ASSERT_TRUE(ResolveEchoText(ids, *bytes).ok());
  EXPECT_EQ(ids.echo_text, (std::vector<std::string>{"hi"}));
  EXPECT_TRUE(MustParse(Endpoint::kCompletions, Completion()).echo_text.empty());
}

}  // namespace
}  // namespace tessera::router::openai
