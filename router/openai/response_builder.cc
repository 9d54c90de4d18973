#include "router/openai/response_builder.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "router/openai/json_fields.h"

namespace tessera::router::openai {
namespace {

using internal::OrderedJson;

std::string Event(const OrderedJson& data) {
  return absl::StrCat("data: ", internal::Dump(data), "\n\n");
}

constexpr char kDone[] = "data: [DONE]\n\n";

// "" while the choice runs; ERROR is handled before this is asked.
std::string FinishReasonText(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_STOP:
    case v1::FINISH_REASON_EOS:
      return "stop";
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_ABORT:
      return "abort";
    case v1::FINISH_REASON_ERROR:
      return "error";
    case v1::FINISH_REASON_UNSPECIFIED:
      return "";
    default:  // proto3 enums are open: an unknown value from a newer worker
      return "stop";
  }
}

OrderedJson ReasonJson(const std::string& reason) {
  return reason.empty() ? OrderedJson(nullptr) : OrderedJson(reason);
}

}  // namespace

std::string MakeResponseId(Endpoint endpoint) {
  absl::BitGen gen;
  return absl::StrFormat("%s-%016x%016x", endpoint == Endpoint::kChat ? "chatcmpl" : "cmpl",
                         absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

std::string ErrorEvent(const ApiError& error) {
  return absl::StrCat("data: ", ErrorBody(error), "\n\n");
}

ResponseBuilder::ResponseBuilder(const ParsedRequest& request, ResponseMeta meta,
                                 const Tokenizer* tokenizer)
    : endpoint_(request.endpoint),
      stream_(request.stream),
      include_usage_(request.include_usage),
      n_(std::max(request.n, 1)),
      logprobs_mode_(request.logprobs),
      echo_text_(request.echo ? request.echo_text : std::vector<std::string>()),
      meta_(std::move(meta)),
      formatter_(tokenizer, request.top_logprobs),
      prompt_usage_(request.prompts.size()),
      total_choices_(static_cast<int64_t>(request.prompts.size()) * std::max(request.n, 1)) {}

OrderedJson ResponseBuilder::ChunkHead() const {
  OrderedJson chunk;
  chunk["id"] = meta_.id;
  chunk["object"] = endpoint_ == Endpoint::kChat ? "chat.completion.chunk" : "text_completion";
  chunk["created"] = meta_.created;
  chunk["model"] = meta_.model;
  return chunk;
}

OrderedJson ResponseBuilder::Usage() const {
  int64_t prompt = 0, cached = 0, completion = 0;
  for (const PromptUsage& u : prompt_usage_) {
    prompt += u.prompt_tokens;
    cached += u.cached_tokens;
  }
  for (const auto& [index, c] : choices_) completion += std::max(c.completion_tokens, c.tokens);
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

std::string ResponseBuilder::OnMessage(int prompt_index, const v1::GenerateResponse& m) {
  if (finished_ || error_.has_value()) return "";
  if (prompt_index < 0 || static_cast<size_t>(prompt_index) >= prompt_usage_.size()) return "";
  if (m.index() < 0 || m.index() >= n_) return "";
  if (m.finish_reason() == v1::FINISH_REASON_ERROR) {
    ApiError e;
    e.http_status = 500;
    e.type = "server_error";
    e.message = m.error_message().empty() ? "generation failed on the server" : m.error_message();
    error_ = e;
    return stream_ ? ErrorEvent(e) : "";
  }
  const int64_t index = static_cast<int64_t>(prompt_index) * n_ + m.index();
  Choice& c = choices_[index];
  if (!c.finish_reason.empty()) return "";
  if (m.has_usage()) {
    PromptUsage& u = prompt_usage_[prompt_index];
    u.prompt_tokens = std::max<int64_t>(u.prompt_tokens, m.usage().prompt_tokens());
    u.cached_tokens = std::max<int64_t>(u.cached_tokens, m.usage().cached_prompt_tokens());
  }
  c.tokens += m.token_ids_size();
  c.finish_reason = FinishReasonText(m.finish_reason());
  if (!c.finish_reason.empty()) {
    ++finished_choices_;
    if (m.has_usage()) c.completion_tokens = m.usage().completion_tokens();
  }
  std::string text = m.text();
  if (!c.started && static_cast<size_t>(prompt_index) < echo_text_.size()) {
    text = echo_text_[prompt_index] + text;
  }
  if (endpoint_ == Endpoint::kChat)
    return ChatEvents(static_cast<int>(index), c, m, std::move(text));
  return CompletionEvents(static_cast<int>(index), c, m, std::move(text));
}

std::string ResponseBuilder::ChatEvents(int index, Choice& c, const v1::GenerateResponse& m,
                                        std::string text) {
  const bool first = !c.started;
  c.started = true;
  OrderedJson logprobs;  // null unless asked
  if (logprobs_mode_ != LogprobsMode::kNone) {
    OrderedJson& content = stream_ ? logprobs["content"] : c.logprobs;
    if (content.is_null()) content = OrderedJson::array();
    formatter_.AppendChat(m, content);
  }
  c.text_chars += internal::CodePoints(text);
  if (!stream_) {
    c.text += text;
    return "";
  }
  std::string out;
  auto chunk = [&](OrderedJson delta, OrderedJson lp, const std::string& reason) {
    OrderedJson event = ChunkHead();
    event["choices"] = OrderedJson::array({{{"index", index},
                                            {"delta", std::move(delta)},
                                            {"logprobs", std::move(lp)},
                                            {"finish_reason", ReasonJson(reason)}}});
    if (include_usage_) event["usage"] = nullptr;
    out += Event(event);
  };
  if (first) chunk({{"role", "assistant"}, {"content", ""}}, nullptr, "");
  const bool has_logprobs = !logprobs.is_null() && !logprobs["content"].empty();
  if (!text.empty() || has_logprobs || !c.finish_reason.empty()) {
    chunk({{"content", std::move(text)}}, std::move(logprobs), c.finish_reason);
  }
  return out;
}

std::string ResponseBuilder::CompletionEvents(int index, Choice& c, const v1::GenerateResponse& m,
                                              std::string text) {
  c.started = true;
  OrderedJson logprobs;
  if (logprobs_mode_ != LogprobsMode::kNone) {
    formatter_.AppendCompletions(m, c.text_chars, stream_ ? logprobs : c.logprobs);
  }
  c.text_chars += internal::CodePoints(text);
  if (!stream_) {
    c.text += text;
    return "";
  }
  const bool has_logprobs = !logprobs.is_null() && !logprobs["tokens"].empty();
  if (text.empty() && !has_logprobs && c.finish_reason.empty()) return "";
  OrderedJson event = ChunkHead();
  event["choices"] = OrderedJson::array({{{"index", index},
                                          {"text", std::move(text)},
                                          {"logprobs", std::move(logprobs)},
                                          {"finish_reason", ReasonJson(c.finish_reason)}}});
  if (include_usage_) event["usage"] = nullptr;
  return Event(event);
}

std::string ResponseBuilder::Finish() {
  if (finished_) return "";
  finished_ = true;
  if (stream_) {
    if (error_.has_value() || !include_usage_) return kDone;
    OrderedJson event = ChunkHead();
    event["choices"] = OrderedJson::array();
    event["usage"] = Usage();
    return absl::StrCat(Event(event), kDone);
  }
  if (error_.has_value()) return ErrorBody(*error_);
  return Body();
}

std::string ResponseBuilder::Body() const {
  OrderedJson body;
  body["id"] = meta_.id;
  body["object"] = endpoint_ == Endpoint::kChat ? "chat.completion" : "text_completion";
  body["created"] = meta_.created;
  body["model"] = meta_.model;
  OrderedJson choices = OrderedJson::array();
  for (const auto& [index, c] : choices_) {  // std::map: sorted by index
    OrderedJson choice;
    choice["index"] = index;
    if (endpoint_ == Endpoint::kChat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      choice["logprobs"] =
          logprobs_mode_ == LogprobsMode::kNone
              ? OrderedJson(nullptr)
              : OrderedJson{{"content", c.logprobs.is_null() ? OrderedJson::array() : c.logprobs}};
    } else {
      choice["text"] = c.text;
      choice["logprobs"] = c.logprobs;  // null unless asked
    }
    choice["finish_reason"] = ReasonJson(c.finish_reason);
    choices.push_back(std::move(choice));
  }
  body["choices"] = std::move(choices);
  body["usage"] = Usage();
  return internal::Dump(body);
}

}  // namespace tessera::router::openai
