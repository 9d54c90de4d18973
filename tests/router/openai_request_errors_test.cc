// router/openai/request.h: 400s naming the field for known but unserved
// fields, type and shape errors, bodies that are not JSON objects; unknown
// fields ignored; the default max_tokens.
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
  tessera::api::FillDefaultMaxTokens(g, 10, 100);
  EXPECT_EQ(g.sampling().max_tokens(), 90);
  tessera::api::FillDefaultMaxTokens(g, 99, 100);
  EXPECT_EQ(g.sampling().max_tokens(), 90);  // already set: left alone
  v1::GenerateRequest full;
  tessera::api::FillDefaultMaxTokens(full, 100, 100);
  EXPECT_EQ(full.sampling().max_tokens(), 1);  // validation then names the length
}

}  // namespace
}  // namespace tessera::router::openai
