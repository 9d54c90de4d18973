// router/openai/request.h: OpenAI request bodies -> GenerateRequest, every
// field mapped, 400s naming the field for unserved fields, type and shape
// errors, prompt forms, echo text.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/openai/api_error.h"
#include "router/openai/request.h"

namespace tessera::router::openai {
namespace {

using Json = nlohmann::ordered_json;

ParsedRequest MustParse(Endpoint e, const Json& body, const ParseOptions& options = {}) {
  ApiOr<ParsedRequest> r = ParseRequest(e, body.dump(), options);
  EXPECT_TRUE(r.ok()) << body.dump() << " -> " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *std::move(r) : ParsedRequest{};
}

ApiError MustFail(Endpoint e, const std::string& body) {
  ApiOr<ParsedRequest> r = ParseRequest(e, body);
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? ApiError{} : r.error();
}

Json Chat(Json extra = Json::object()) {
  Json body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

Json Completion(Json extra = Json::object()) {
  Json body = {{"model", "m"}, {"prompt", "Once upon"}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

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

TEST(OpenAiRequest, KnownButUnservedFieldsNameTheField) {
  struct Case {
    Endpoint endpoint;
    const char* field;
    const char* value;
  };
  const Endpoint kC = Endpoint::kChat, kP = Endpoint::kCompletions;
  const Case cases[] = {
      {kC, "tools", R"([{"type": "function", "function": {"name": "f"}}])"},
      {kC, "tool_choice", R"("required")"},
      {kC, "tool_choice", R"({"type": "function", "function": {"name": "f"}})"},
      {kC, "functions", R"([{"name": "f"}])"},
      {kC, "function_call", R"({"name": "f"})"},
      {kC, "response_format", R"({"type": "json_object"})"},
      {kP, "response_format", R"({"type": "json_schema", "json_schema": {}})"},
      {kC, "response_format", R"("text")"},
      {kC, "logit_bias", R"({"50256": -100})"},
      {kP, "logit_bias", R"({"1": 5})"},
      {kP, "best_of", "3"},
      {kP, "suffix", R"("tail")"},
      {kC, "audio", R"({"voice": "alloy", "format": "wav"})"},
      {kC, "modalities", R"(["text", "audio"])"},
      {kC, "prediction", R"({"type": "content", "content": "x"})"},
      {kC, "web_search_options", R"({})"},
      {kC, "guided_json", R"({"type": "object"})"},
      {kP, "guided_regex", R"("a+")"},
      {kC, "guided_choice", R"(["a"])"},
      {kC, "structured_outputs", R"({"json": {}})"},
      {kP, "use_beam_search", "true"},
      {kC, "min_tokens", "3"},
      {kP, "prompt_logprobs", "1"},
      {kC, "include_stop_str_in_output", "true"},
      {kC, "skip_special_tokens", "false"},
      {kP, "allowed_token_ids", "[1, 2]"},
      {kC, "bad_words", R"(["x"])"},
      {kP, "truncate_prompt_tokens", "5"},
      {kC, "return_tokens_as_token_ids", "true"},
      {kC, "echo", "true"},
      {kC, "chat_template", R"("{{ messages }}")"},
      {kC, "documents", R"([{"text": "d"}])"},
      {kC, "add_special_tokens", "true"},
      {kC, "continue_final_message", "true"},
      {kP, "echo", "true"},  // with logprobs, below
  };
  for (const Case& c : cases) {
    Json body = c.endpoint == kC ? Chat() : Completion();
    body[c.field] = Json::parse(c.value);
    if (std::string(c.field) == "echo" && c.endpoint == kP) body["logprobs"] = 1;
    const ApiError e = MustFail(c.endpoint, body.dump());
    EXPECT_EQ(e.param, c.field) << c.field << " = " << c.value;
    EXPECT_EQ(e.http_status, 400);
    EXPECT_EQ(e.type, "invalid_request_error");
  }
  // The same fields asking for nothing are accepted.
  MustParse(kC, Chat({{"tools", Json::array()},
                      {"tool_choice", "none"},
                      {"logit_bias", Json::object()},
                      {"response_format", {{"type", "text"}}},
                      {"modalities", {"text"}},
                      {"skip_special_tokens", true},
                      {"use_beam_search", false},
                      {"min_tokens", 0},
                      {"echo", false},
                      {"add_special_tokens", false},
                      {"parallel_tool_calls", true},
                      {"continue_final_message", false}}));
  MustParse(kC, Chat({{"tool_choice", "auto"}}));
  MustParse(kP, Completion({{"best_of", 2}, {"n", 2}, {"suffix", ""}, {"echo", true}}));
}

TEST(OpenAiRequest, TypeAndShapeErrorsNameTheField) {
  struct Case {
    Endpoint endpoint;
    const char* field;
    const char* value;
  };
  const Endpoint kC = Endpoint::kChat, kP = Endpoint::kCompletions;
  const Case cases[] = {
      {kC, "temperature", R"("hot")"},
      {kC, "top_p", "[]"},
      {kC, "max_tokens", R"("16")"},
      {kC, "max_tokens", "1.5"},
      {kC, "max_tokens", "4294967296"},
      {kC, "max_completion_tokens", "true"},
      {kP, "max_tokens", R"("x")"},
      {kC, "n", "0"},
      {kC, "n", "-2"},
      {kP, "n", R"("2")"},
      {kC, "top_k", "1e10"},
      {kC, "seed", R"("s")"},
      {kC, "seed", "1e30"},
      {kC, "stop", "5"},
      {kC, "stop", R"(["a", 1])"},
      {kC, "stop_token_ids", R"("1")"},
      {kC, "stop_token_ids", R"([1, "a"])"},
      {kC, "ignore_eos", "1"},
      {kC, "stream", R"("yes")"},
      {kC, "logprobs", "2"},
      {kC, "top_logprobs", "21"},
      {kC, "top_logprobs", "-1"},
      {kC, "top_logprobs", "2"},  // without logprobs
      {kP, "logprobs", "-1"},
      {kP, "logprobs", "true"},
      {kP, "echo", R"("y")"},
      {kC, "stream_options", R"({"include_usage": true})"},
      {kC, "priority", "1.25"},
      {kC, "user", "5"},
      {kC, "model", "5"},
      {kC, "chat_template_kwargs", R"("x")"},
      {kC, "add_generation_prompt", "0"},
      {kP, "add_special_tokens", R"("no")"},
      {kC, "presence_penalty", "null"},
      {kC, "request_id", "[]"},
      {kC, "frequency_penalty", R"({})"},
  };
  for (const Case& c : cases) {
    if (std::string(c.value) == "null") continue;  // a placeholder row: null is "not given"
    Json body = c.endpoint == kC ? Chat() : Completion();
    body[c.field] = Json::parse(c.value);
    const ApiError e = MustFail(c.endpoint, body.dump());
    EXPECT_EQ(e.param, c.field) << c.field << " = " << c.value << ": " << e.message;
    EXPECT_EQ(e.http_status, 400);
  }
  // stream_options with stream true is fine, and a non-object is a 400.
  MustParse(kC, Chat({{"stream", true}, {"stream_options", {{"include_usage", false}}}}));
  EXPECT_EQ(MustFail(kC, Chat({{"stream", true}, {"stream_options", 1}}).dump()).param,
            "stream_options");
}

TEST(OpenAiRequest, UnknownFieldsAreIgnored) {
  ParsedRequest r = MustParse(Endpoint::kChat, Chat({{"metadata", {{"a", "b"}}},
                                                     {"store", true},
                                                     {"service_tier", "auto"},
                                                     {"foo", [] {
                                                        return Json::array({1, {{"x", nullptr}}});
                                                      }()}}));
  EXPECT_EQ(r.prompts.size(), 1u);
  MustParse(Endpoint::kCompletions, Completion({{"bar", "baz"}}));
}

TEST(OpenAiRequest, BodiesThatAreNotJsonObjects) {
  for (const char* body : {"", "not json", "{", "[]", "\"str\"", "5", "null", "{\"a\":}",
                           "{\"model\": \"m\"} trailing"}) {
    const ApiError e = MustFail(Endpoint::kChat, body);
    EXPECT_EQ(e.http_status, 400) << body;
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_FALSE(e.message.empty());
  }
  std::string deep =
      R"({"model": "m", "x": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_NE(MustFail(Endpoint::kChat, deep).message.find("deeper"), std::string::npos);
  // Invalid UTF-8 inside a string is not JSON either.
  EXPECT_EQ(MustFail(Endpoint::kCompletions, "{\"prompt\": \"\xff\"}").http_status, 400);
}

TEST(OpenAiRequest, FillDefaultMaxTokens) {
  v1::GenerateRequest g;
  api::FillDefaultMaxTokens(g, 10, 100);
  EXPECT_EQ(g.sampling().max_tokens(), 90);
  api::FillDefaultMaxTokens(g, 99, 100);
  EXPECT_EQ(g.sampling().max_tokens(), 90);  // already set: left alone
  v1::GenerateRequest full;
  api::FillDefaultMaxTokens(full, 100, 100);
  EXPECT_EQ(full.sampling().max_tokens(), 1);  // validation then names the length
}

}  // namespace
}  // namespace tessera::router::openai
