// router/openai/request.h and api_error.h: OpenAI request bodies ->
// GenerateRequest, 400s naming the field, error bodies, FromStatus, and a
// seeded fuzz loop over mutated bodies.
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/api/request_validation.h"
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
  EXPECT_FALSE(g.sampling().has_max_tokens());   // filled by FillDefaultMaxTokens
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
  FillDefaultMaxTokens(g, 10, 100);
  EXPECT_EQ(g.sampling().max_tokens(), 90);
  FillDefaultMaxTokens(g, 99, 100);
  EXPECT_EQ(g.sampling().max_tokens(), 90);  // already set: left alone
  v1::GenerateRequest full;
  FillDefaultMaxTokens(full, 100, 100);
  EXPECT_EQ(full.sampling().max_tokens(), 1);  // validation then names the length
}

TEST(OpenAiRequest, SharedValidationErrorsMapToTheField) {
  std::shared_ptr<const ModelText> text = *ModelText::Load({}, std::nullopt, 512);
  api::RequestLimits limits;
  limits.model_name = "m";
  limits.vocab_size = 512;
  limits.max_model_len = 64;
  struct Case {
    Json extra;
    const char* param;
  };
  const Case cases[] = {
      {{{"temperature", -1}}, "temperature"},
      {{{"top_p", 0}}, "top_p"},
      {{{"max_tokens", 0}}, "max_tokens"},
      {{{"max_tokens", 1000}}, "prompt"},
      {{{"stop", {""}}}, "stop"},
      {{{"stop_token_ids", {9999}}}, "stop_token_ids"},
      {{{"logprobs", 21}}, "logprobs"},
      {{{"prompt", {9999}}}, "prompt"},
      {{{"presence_penalty", 3}}, "presence_penalty"},
      {{{"model", "other"}}, "model"},
  };
  for (const Case& c : cases) {
    ParsedRequest r = MustParse(Endpoint::kCompletions, Completion(c.extra));
    absl::StatusOr<api::ValidatedRequest> v =
        api::ValidateGenerateRequest(r.prompts[0], limits, *text);
    ASSERT_FALSE(v.ok()) << c.extra.dump();
    const ApiError e = FromStatus(v.status());
    EXPECT_EQ(e.param, c.param) << v.status();
  }
  ParsedRequest ok = MustParse(Endpoint::kCompletions, Completion({{"max_tokens", nullptr}}));
  FillDefaultMaxTokens(ok.prompts[0], 10, limits.max_model_len);
  EXPECT_TRUE(api::ValidateGenerateRequest(ok.prompts[0], limits, *text).ok());
}

TEST(OpenAiError, BodyShape) {
  ApiError e = InvalidRequest("temperature", "bad \xff value");
  Json body = Json::parse(ErrorBody(e));
  EXPECT_EQ(body["error"]["message"], "bad \xEF\xBF\xBD value");  // U+FFFD
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "temperature");
  EXPECT_TRUE(body["error"]["code"].is_null());
  EXPECT_EQ(body["error"].size(), 4u);
  Json no_param = Json::parse(ErrorBody(InvalidRequest("", "x")));
  EXPECT_TRUE(no_param["error"]["param"].is_null());
}

TEST(OpenAiError, FromStatusMapsCodes) {
  struct Case {
    absl::Status status;
    int http;
    const char* type;
  };
  const Case cases[] = {
      {absl::InvalidArgumentError("x"), 400, "invalid_request_error"},
      {absl::OutOfRangeError("x"), 400, "invalid_request_error"},
      {absl::FailedPreconditionError("x"), 400, "invalid_request_error"},
      {absl::UnauthenticatedError("x"), 401, "authentication_error"},
      {absl::PermissionDeniedError("x"), 403, "permission_error"},
      {absl::NotFoundError("x"), 404, "not_found_error"},
      {absl::AlreadyExistsError("x"), 409, "conflict_error"},
      {absl::ResourceExhaustedError("x"), 429, "rate_limit_error"},
      {absl::CancelledError("x"), 499, "request_cancelled"},
      {absl::UnimplementedError("x"), 501, "not_implemented_error"},
      {absl::UnavailableError("x"), 503, "service_unavailable"},
      {absl::DeadlineExceededError("x"), 504, "timeout_error"},
      {absl::InternalError("x"), 500, "server_error"},
      {absl::UnknownError("x"), 500, "server_error"},
  };
  for (const Case& c : cases) {
    ApiError e = FromStatus(c.status);
    EXPECT_EQ(e.http_status, c.http) << c.status;
    EXPECT_EQ(e.type, c.type) << c.status;
    EXPECT_EQ(e.message, "x");
  }
}

TEST(OpenAiError, FromStatusParamRule) {
  auto param = [](const char* message, bool chat = false) {
    return FromStatus(absl::InvalidArgumentError(message), chat).param;
  };
  EXPECT_EQ(param("sampling.temperature must be non-negative, got -1"), "temperature");
  EXPECT_EQ(param("temperature must be non-negative, got -1"), "temperature");
  EXPECT_EQ(param("stop[1] is empty; stop strings must be non-empty"), "stop");
  EXPECT_EQ(param("token_ids[3] = 9 is outside the vocabulary [0, 5)"), "prompt");
  EXPECT_EQ(param("prompt: text is empty; give a non-empty prompt"), "prompt");
  EXPECT_EQ(param("chat.messages[0].fields_json: must be a JSON object", true), "messages");
  EXPECT_EQ(param("chat: this model has no chat template", true), "messages");
  EXPECT_EQ(param("chat.chat_template_kwargs_json: must be a JSON object", true),
            "chat_template_kwargs");
  EXPECT_EQ(param("logprobs must be in [0, 20], got 30", true), "top_logprobs");
  EXPECT_EQ(param("logprobs must be in [0, 20], got 30"), "logprobs");
  EXPECT_EQ(param("Conversation roles must alternate user/assistant"), "");
  EXPECT_EQ(param("no worker has reported its model yet"), "");
  EXPECT_EQ(param("max_tokens"), "max_tokens");
  EXPECT_EQ(param(""), "");
  ApiError nf = FromStatus(absl::NotFoundError("model 'x' is not served here"));
  EXPECT_EQ(nf.param, "model");
  EXPECT_EQ(nf.code, "model_not_found");
}

TEST(OpenAiError, CheckModel) {
  const std::vector<std::string> served = {"llama", "alias"};
  EXPECT_FALSE(CheckModel("", served).has_value());
  EXPECT_FALSE(CheckModel("alias", served).has_value());
  std::optional<ApiError> e = CheckModel("gpt-4", served);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->http_status, 404);
  EXPECT_EQ(e->param, "model");
  EXPECT_EQ(e->code, "model_not_found");
}

// Mutated bodies never crash and never escape as exceptions: every outcome
// is a parsed request or a 400.
TEST(OpenAiRequest, FuzzedBodiesAreParsedOrRejected) {
  std::mt19937_64 rng(20240613);
  const std::vector<std::string> seeds = {
      Chat({{"stream", true},
            {"stream_options", {{"include_usage", true}}},
            {"n", 2},
            {"logprobs", true},
            {"top_logprobs", 2},
            {"stop", {"a"}},
            {"seed", 1},
            {"messages", Json::parse(R"([{"role":"user","content":[{"type":"text","text":"x"}]},
              {"role":"assistant","content":null,"tool_calls":[{"function":{"arguments":"{}"}}]}])")}})
          .dump(),
      Completion({{"prompt", {{1, 2}, {3}}},
                  {"echo", true},
                  {"max_tokens", 4},
                  {"logit_bias", Json::object()}})
          .dump(),
      Completion({{"prompt", {"a", "b"}}, {"logprobs", 3}, {"temperature", 0.0}}).dump(),
  };
  const std::vector<Json> values = {nullptr,
                                    true,
                                    false,
                                    0,
                                    -1,
                                    1,
                                    2147483648LL,
                                    1.5,
                                    -1e300,
                                    "",
                                    "x",
                                    Json::array(),
                                    Json::object(),
                                    {1, 2},
                                    {"a"},
                                    {{"type", "text"}}};
  const std::string alphabet = "{}[]\":,0123456789.-eEtrufalsn \\\xff\xc3";
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string body = seeds[rng() % seeds.size()];
    if (iter % 2 == 0) {
      // Byte-level: flips, insertions, deletions.
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits && !body.empty(); ++k) {
        const size_t at = rng() % body.size();
        switch (rng() % 3) {
          case 0:
            body[at] = alphabet[rng() % alphabet.size()];
            break;
          case 1:
            body.insert(at, 1, alphabet[rng() % alphabet.size()]);
            break;
          default:
            body.erase(at, 1 + rng() % 3);
        }
      }
    } else {
      // Structure-level: a field (or a nested one) replaced by a value of another type.
      Json j = Json::parse(body);
      std::vector<Json*> slots;
      std::function<void(Json&)> collect = [&](Json& v) {
        if (v.is_object())
          for (auto& [k, c] : v.items()) {
            slots.push_back(&c);
            collect(c);
          }
        if (v.is_array())
          for (Json& c : v) {
            slots.push_back(&c);
            collect(c);
          }
      };
      collect(j);
      *slots[rng() % slots.size()] = values[rng() % values.size()];
      body = j.dump();
    }
    const Endpoint e = rng() % 2 ? Endpoint::kChat : Endpoint::kCompletions;
    ApiOr<ParsedRequest> r = ParseRequest(e, body);
    if (r.ok()) {
      ++parsed;
      EXPECT_FALSE(r->prompts.empty());
    } else {
      ++rejected;
      EXPECT_EQ(r.error().http_status, 400) << body;
      EXPECT_FALSE(r.error().message.empty());
      Json::parse(ErrorBody(r.error()));  // always a valid body
    }
  }
  EXPECT_GT(parsed, 100);
  EXPECT_GT(rejected, 100);
}

}  // namespace
}  // namespace tessera::router::openai
