// router/openai/api_error.h: error bodies, FromStatus (codes and the param
// rule, also on the shared validation's real messages), CheckModel; and a
// seeded fuzz loop over mutated request bodies.
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
  api::FillDefaultMaxTokens(ok.prompts[0], 10, limits.max_model_len);
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
      EXPECT_TRUE(Json::accept(ErrorBody(r.error())));  // always a valid body
    }
  }
  EXPECT_GT(parsed, 100);
  EXPECT_GT(rejected, 100);
}

}  // namespace
}  // namespace tessera::router::openai
