#include "router/openai/request.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "router/openai/json_fields.h"

namespace tessera::router::openai {
namespace {

using internal::Fail;
using internal::Find;
using internal::GetBool;
using internal::GetInt;
using internal::GetNumber;
using internal::GetString;
using internal::OrderedJson;
using internal::TypeName;

constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int kOpenAiMaxTopLogprobs = 20;
constexpr int kCompletionsDefaultMaxTokens = 16;  // OpenAI's and vLLM's

// What makes a known-but-unserved field a 400.
enum class Asks {
  kNotNull,   // any value but null
  kTrue,      // true
  kFalse,     // false (the field's served default is true)
  kNonEmpty,  // a non-empty array, object or string (or any other non-null value)
  kPositive,  // a number > 0
};

struct Unserved {
  const char* field;
  Asks asks;
  const char* why;
};

constexpr Unserved kUnservedCommon[] = {
    {"logit_bias", Asks::kNonEmpty, "logit_bias is not supported"},
    {"tools", Asks::kNonEmpty, "tool calling is not supported"},
    {"functions", Asks::kNonEmpty, "function calling is not supported"},
    {"audio", Asks::kNotNull, "audio output is not supported; this server serves text only"},
    {"prediction", Asks::kNotNull, "predicted outputs are not supported"},
    {"web_search_options", Asks::kNotNull, "web search is not supported"},
    {"guided_json", Asks::kNotNull, "guided decoding is not supported"},
    {"guided_regex", Asks::kNotNull, "guided decoding is not supported"},
    {"guided_choice", Asks::kNotNull, "guided decoding is not supported"},
    {"guided_grammar", Asks::kNotNull, "guided decoding is not supported"},
    {"structured_outputs", Asks::kNotNull, "structured outputs are not supported"},
    {"use_beam_search", Asks::kTrue, "beam search is not supported"},
    {"min_tokens", Asks::kPositive, "min_tokens is not supported"},
    {"prompt_logprobs", Asks::kNotNull, "prompt logprobs are not available from this server"},
    {"include_stop_str_in_output", Asks::kTrue, "include_stop_str_in_output is not supported"},
    {"skip_special_tokens", Asks::kFalse,
     "skip_special_tokens=false is not supported; special tokens are always skipped"},
    {"allowed_token_ids", Asks::kNonEmpty, "allowed_token_ids is not supported"},
    {"bad_words", Asks::kNonEmpty, "bad_words is not supported"},
    {"truncate_prompt_tokens", Asks::kNotNull, "truncate_prompt_tokens is not supported"},
    {"return_tokens_as_token_ids", Asks::kTrue, "return_tokens_as_token_ids is not supported"},
    {"return_token_ids", Asks::kTrue, "return_token_ids is not supported"},
};
constexpr Unserved kUnservedChat[] = {
    {"echo", Asks::kTrue, "echo is not supported for chat completions"},
    {"chat_template", Asks::kNotNull,
     "a per-request chat_template is not supported; the server's chat template is used"},
    {"documents", Asks::kNonEmpty, "documents are not supported"},
    {"add_special_tokens", Asks::kTrue,
     "add_special_tokens=true is not supported for chat: the chat template writes the special "
     "tokens"},
};
constexpr Unserved kUnservedCompletions[] = {
    {"suffix", Asks::kNonEmpty, "suffix (fill-in-the-middle) is not supported"},
};

bool AsksFor(const OrderedJson& v, Asks asks) {
  if (v.is_null()) return false;
  switch (asks) {
    case Asks::kNotNull:
      return true;
    case Asks::kTrue:
      return !v.is_boolean() || v.get<bool>();
    case Asks::kFalse:
      return !v.is_boolean() || !v.get<bool>();
    case Asks::kNonEmpty:
      return !((v.is_array() || v.is_object() || v.is_string()) && v.empty()) &&
             !(v.is_string() && v.get<std::string>().empty());
    case Asks::kPositive:
      return !v.is_number() || v.get<double>() > 0;
  }
  return true;
}

template <size_t N>
void RejectUnserved(const OrderedJson& body, const Unserved (&table)[N]) {
  for (const Unserved& u : table) {
    const OrderedJson* v = Find(body, u.field);
    if (v != nullptr && AsksFor(*v, u.asks)) {
      Fail(u.field, absl::StrCat("`", u.field, "`: ", u.why, " by this server"));
    }
  }
}

// The unserved fields whose rule is more than one predicate.
void RejectUnservedSpecial(const OrderedJson& body, Endpoint endpoint) {
  for (const char* field : {"tool_choice", "function_call"}) {
    const OrderedJson* v = Find(body, field);
    if (v != nullptr && !(v->is_string() && (*v == "none" || *v == "auto"))) {
      Fail(field, absl::StrCat("`", field,
                               "`: only \"none\" (or \"auto\" without tools) is "
                               "supported; tool calling is not supported by this server"));
    }
  }
  if (const OrderedJson* v = Find(body, "response_format")) {
    const OrderedJson* type = Find(*v, "type");
    if (!v->is_object() || type == nullptr || *type != "text") {
      Fail("response_format",
           "`response_format`: only {\"type\": \"text\"} is supported by this server");
    }
  }
  if (const OrderedJson* v = Find(body, "modalities")) {
    if (!v->is_array()) {
      Fail("modalities", absl::StrCat("`modalities` must be an array, got ", TypeName(*v)));
    }
    for (const OrderedJson& m : *v) {
      if (m != "text") {
        Fail("modalities", "`modalities`: only [\"text\"] is supported by this server");
      }
    }
  }
  if (endpoint == Endpoint::kCompletions && Find(body, "best_of") != nullptr) {
    const int64_t best_of = *GetInt(body, "best_of", 1, kInt32Max);
    const int64_t n = GetInt(body, "n", 1, kInt32Max).value_or(1);
    if (best_of != n) {
      Fail("best_of", "`best_of` other than `n` is not supported by this server");
    }
  }
}

float ToFloat(double d) {
  // Out-of-range double -> float conversions are undefined; saturate instead.
  constexpr double kMax = std::numeric_limits<float>::max();
  if (d > kMax) return std::numeric_limits<float>::infinity();
  if (d < -kMax) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(d);
}

void SetFloat(const OrderedJson& body, const char* key, v1::SamplingParams& s,
              void (v1::SamplingParams::*set)(float)) {
  if (std::optional<double> v = GetNumber(body, key)) (s.*set)(ToFloat(*v));
}

std::vector<std::string> ParseStop(const OrderedJson& body) {
  const OrderedJson* v = Find(body, "stop");
  if (v == nullptr) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) {
    Fail("stop",
         absl::StrCat("`stop` must be a string or an array of strings, got ", TypeName(*v)));
  }
  std::vector<std::string> stop;
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string()) {
      Fail("stop", absl::StrCat("`stop[", i, "]` must be a string, got ", TypeName((*v)[i])));
    }
    stop.push_back((*v)[i].get<std::string>());
  }
  return stop;
}

// max_tokens per endpoint; nullopt = filled later (api::FillDefaultMaxTokens).
std::optional<int64_t> ParseMaxTokens(const OrderedJson& body, Endpoint endpoint) {
  if (endpoint == Endpoint::kChat) {
    if (auto v = GetInt(body, "max_completion_tokens", kInt32Min, kInt32Max)) return v;
    return GetInt(body, "max_tokens", kInt32Min, kInt32Max);
  }
  if (!body.contains("max_tokens")) return kCompletionsDefaultMaxTokens;
  return GetInt(body, "max_tokens", kInt32Min, kInt32Max);
}

void ParseLogprobs(const OrderedJson& body, ParsedRequest& out) {
  if (out.endpoint == Endpoint::kChat) {
    const bool on = GetBool(body, "logprobs").value_or(false);
    const std::optional<int64_t> top = GetInt(body, "top_logprobs", 0, kOpenAiMaxTopLogprobs);
    if (top.value_or(0) > 0 && !on) {
      Fail("top_logprobs", "when using `top_logprobs`, `logprobs` must be set to true");
    }
    if (on) {
      out.logprobs = LogprobsMode::kChat;
      out.top_logprobs = static_cast<int>(top.value_or(0));
    }
    return;
  }
  if (std::optional<int64_t> k = GetInt(body, "logprobs", 0, kInt32Max)) {
    out.logprobs = LogprobsMode::kCompletions;
    out.top_logprobs = static_cast<int>(*k);
  }
}

v1::SamplingParams ParseSampling(const OrderedJson& body, ParsedRequest& out) {
  v1::SamplingParams s;
  if (std::optional<int64_t> max_tokens = ParseMaxTokens(body, out.endpoint)) {
    s.set_max_tokens(static_cast<int32_t>(*max_tokens));
  }
  SetFloat(body, "temperature", s, &v1::SamplingParams::set_temperature);
  SetFloat(body, "top_p", s, &v1::SamplingParams::set_top_p);
  SetFloat(body, "min_p", s, &v1::SamplingParams::set_min_p);
  SetFloat(body, "presence_penalty", s, &v1::SamplingParams::set_presence_penalty);
  SetFloat(body, "frequency_penalty", s, &v1::SamplingParams::set_frequency_penalty);
  SetFloat(body, "repetition_penalty", s, &v1::SamplingParams::set_repetition_penalty);
  if (auto top_k = GetInt(body, "top_k", kInt32Min, kInt32Max)) s.set_top_k(*top_k);
  if (const OrderedJson* seed = Find(body, "seed")) {
    // Any 64-bit integer; a negative seed is used as its two's complement.
    if (seed->is_number_unsigned()) {
      s.set_seed(seed->get<uint64_t>());
    } else {
      s.set_seed(
          static_cast<uint64_t>(*internal::AsInt(*seed, "seed", std::numeric_limits<int64_t>::min(),
                                                 std::numeric_limits<int64_t>::max())));
    }
  }
  if (auto n = GetInt(body, "n", 1, kInt32Max)) {
    out.n = static_cast<int>(*n);
    s.set_n(out.n);
  }
  for (std::string& stop : ParseStop(body)) s.add_stop(std::move(stop));
  if (const OrderedJson* ids = Find(body, "stop_token_ids")) {
    if (!ids->is_array()) {
      Fail("stop_token_ids",
           absl::StrCat("`stop_token_ids` must be an array of integers, got ", TypeName(*ids)));
    }
    for (const OrderedJson& id : *ids) {
      s.add_stop_token_ids(*internal::AsInt(id, "stop_token_ids", kInt32Min, kInt32Max));
    }
  }
  s.set_ignore_eos(GetBool(body, "ignore_eos").value_or(false));
  ParseLogprobs(body, out);
  if (out.logprobs != LogprobsMode::kNone) s.set_logprobs(std::max(out.top_logprobs, 1));
  return s;
}

// `prompt` of a completions body: one entry per prompt.
std::vector<v1::GenerateRequest> ParsePrompts(const OrderedJson& body) {
  const OrderedJson* prompt = Find(body, "prompt");
  if (prompt == nullptr) Fail("prompt", "`prompt` is required");
  std::vector<v1::GenerateRequest> out;
  auto add_text = [&out](const std::string& text) { out.emplace_back().set_text(text); };
  auto add_ids = [&out](const OrderedJson& ids, const std::string& where) {
    v1::TokenIds* dst = out.emplace_back().mutable_token_ids();
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!ids[i].is_number()) {
        Fail("prompt", absl::StrCat("`", where, "[", i, "]` must be a token id (an integer), got ",
                                    TypeName(ids[i])));
      }
      dst->add_ids(*internal::AsInt(ids[i], "prompt", kInt32Min, kInt32Max));
    }
  };
  if (prompt->is_string()) {
    add_text(prompt->get<std::string>());
    return out;
  }
  if (!prompt->is_array() || prompt->empty()) {
    Fail("prompt", absl::StrCat("`prompt` must be a string, an array of strings, an array of "
                                "token ids or an array of token id arrays, got ",
                                prompt->is_array() ? "an empty array" : TypeName(*prompt)));
  }
  if ((*prompt)[0].is_number()) {
    add_ids(*prompt, "prompt");
    return out;
  }
  for (size_t p = 0; p < prompt->size(); ++p) {
    const OrderedJson& item = (*prompt)[p];
    if (item.is_string() && (*prompt)[0].is_string()) {
      add_text(item.get<std::string>());
    } else if (item.is_array() && (*prompt)[0].is_array()) {
      add_ids(item, absl::StrCat("prompt[", p, "]"));
    } else {
      Fail("prompt", absl::StrCat("`prompt[", p, "]` must be ",
                                  (*prompt)[0].is_array() ? "an array of token ids" : "a string",
                                  " like prompt[0], got ", TypeName(item)));
    }
  }
  return out;
}

ParsedRequest Parse(Endpoint endpoint, const OrderedJson& body, const ParseOptions& options) {
  ParsedRequest out;
  out.endpoint = endpoint;
  RejectUnserved(body, kUnservedCommon);
  if (endpoint == Endpoint::kChat) RejectUnserved(body, kUnservedChat);
  if (endpoint == Endpoint::kCompletions) RejectUnserved(body, kUnservedCompletions);
  RejectUnservedSpecial(body, endpoint);

  out.model = GetString(body, "model").value_or("");
  out.user = GetString(body, "user").value_or("");
  out.stream = GetBool(body, "stream").value_or(false);
  if (const OrderedJson* so = Find(body, "stream_options")) {
    if (!out.stream) Fail("stream_options", "stream_options can only be given when stream is true");
    if (!so->is_object()) {
      Fail("stream_options",
           absl::StrCat("`stream_options` must be an object, got ", TypeName(*so)));
    }
    out.include_usage = GetBool(*so, "include_usage").value_or(false);
    if (GetBool(*so, "continuous_usage_stats").value_or(false)) {
      Fail("stream_options", "`stream_options.continuous_usage_stats` is not supported");
    }
  }
  const v1::SamplingParams sampling = ParseSampling(body, out);
  if (endpoint == Endpoint::kCompletions) {
    out.echo = GetBool(body, "echo").value_or(false);
    if (out.echo && out.logprobs != LogprobsMode::kNone) {
      Fail("echo",
           "`echo` with `logprobs` needs prompt logprobs, which this server does not "
           "provide; drop one of them");
    }
  }
  const std::optional<int64_t> priority = GetInt(body, "priority", kInt32Min, kInt32Max);
  std::string request_id = options.request_id;
  if (request_id.empty()) request_id = GetString(body, "request_id").value_or("");

  if (endpoint == Endpoint::kChat) {
    ApiOr<v1::ChatPrompt> chat = ParseChatPrompt(body);
    if (!chat.ok()) throw internal::BadRequest{chat.error()};
    *out.prompts.emplace_back().mutable_chat() = *std::move(chat);
  } else {
    out.prompts = ParsePrompts(body);
    if (std::optional<bool> add = GetBool(body, "add_special_tokens")) {
      for (v1::GenerateRequest& r : out.prompts) r.set_add_special_tokens(*add);
    }
  }
  for (size_t p = 0; p < out.prompts.size(); ++p) {
    v1::GenerateRequest& r = out.prompts[p];
    r.set_model(out.model);
    *r.mutable_sampling() = sampling;
    r.set_return_text(true);
    r.set_user(out.user);
    if (priority.has_value()) r.set_priority(static_cast<int32_t>(*priority));
    if (!request_id.empty()) {
      r.set_request_id(out.prompts.size() == 1 ? request_id : absl::StrCat(request_id, "-", p));
    }
    if (out.echo) out.echo_text.push_back(r.has_text() ? r.text() : "");
  }
  return out;
}

}  // namespace

ApiOr<ParsedRequest> ParseRequestJson(Endpoint endpoint, const OrderedJson& body,
                                      const ParseOptions& options) {
  if (!body.is_object()) {
    return InvalidRequest("",
                          absl::StrCat("request body must be a JSON object, got ", TypeName(body)));
  }
  return internal::Guard<ParsedRequest>([&] { return Parse(endpoint, body, options); });
}

ApiOr<ParsedRequest> ParseRequest(Endpoint endpoint, absl::string_view body,
                                  const ParseOptions& options) {
  ApiOr<OrderedJson> json = internal::ParseObject(body);
  if (!json.ok()) return json.error();
  return ParseRequestJson(endpoint, *json, options);
}

absl::Status ResolveEchoText(ParsedRequest& parsed, const Tokenizer& tokenizer) {
  if (!parsed.echo) return absl::OkStatus();
  parsed.echo_text.resize(parsed.prompts.size());
  for (size_t p = 0; p < parsed.prompts.size(); ++p) {
    const v1::GenerateRequest& r = parsed.prompts[p];
    if (!r.has_token_ids()) continue;
    const auto& ids = r.token_ids().ids();
    absl::StatusOr<std::string> text =
        tokenizer.Decode(std::span<const int32_t>(ids.data(), ids.size()), /*skip_special=*/false);
    if (!text.ok()) return text.status();
    parsed.echo_text[p] = *std::move(text);
  }
  return absl::OkStatus();
}

}  // namespace tessera::router::openai
