#include "router/openai/api_error.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "common/api/request_limits.h"
#include "nlohmann/json.hpp"

namespace tessera::router::openai {
namespace {

struct CodeMapping {
  int http_status;
  const char* type;
};

CodeMapping MapCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return {400, "invalid_request_error"};
    case absl::StatusCode::kUnauthenticated:
      return {401, "authentication_error"};
    case absl::StatusCode::kPermissionDenied:
      return {403, "permission_error"};
    case absl::StatusCode::kNotFound:
      return {404, "not_found_error"};
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return {409, "conflict_error"};
    case absl::StatusCode::kResourceExhausted:
      return {429, "rate_limit_error"};
    case absl::StatusCode::kCancelled:
      return {499, "request_cancelled"};
    case absl::StatusCode::kUnimplemented:
      return {501, "not_implemented_error"};
    case absl::StatusCode::kUnavailable:
      return {503, "service_unavailable"};
    case absl::StatusCode::kDeadlineExceeded:
      return {504, "timeout_error"};
    default:  // INTERNAL, UNKNOWN, DATA_LOSS (and OK, which is no error)
      break;
  }
  return {500, "server_error"};
}

// The OpenAI field a validation message's leading path is about, or "".
std::string ParamOf(absl::string_view message, bool chat) {
  size_t end = 0;
  while (end < message.size()) {
    const char c = message[end];
    const bool path_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '[' || c == ']';
    if (!path_char) break;
    ++end;
  }
  // The path must be followed by a separator (or end the message).
  if (end == 0 || (end < message.size() && message[end] != ' ' && message[end] != ':')) {
    return "";
  }
  absl::string_view path = message.substr(0, end);
  // Drop indices: "stop[1]" -> "stop", "chat.messages[0].fields_json" keeps
  // its components.
  std::string clean;
  int depth = 0;
  for (char c : path) {
    if (c == '[') ++depth;
    if (depth == 0) clean.push_back(c);
    if (c == ']' && depth > 0) --depth;
  }
  if (clean.rfind("chat", 0) == 0 && (clean.size() == 4 || clean[4] == '.')) {
    if (clean.find("chat_template_kwargs_json") != std::string::npos) return "chat_template_kwargs";
    return "messages";
  }
  absl::string_view last = clean;
  if (const size_t dot = last.rfind('.'); dot != absl::string_view::npos)
    last.remove_prefix(dot + 1);
  if (last == "token_ids" || last == "text" || last == "prompt")
    return chat ? "messages" : "prompt";
  static constexpr std::array<absl::string_view, 17> kFields = {"max_tokens",
                                                                "temperature",
                                                                "top_p",
                                                                "top_k",
                                                                "min_p",
                                                                "seed",
                                                                "stop",
                                                                "stop_token_ids",
                                                                "ignore_eos",
                                                                "repetition_penalty",
                                                                "n",
                                                                "presence_penalty",
                                                                "frequency_penalty",
                                                                "logprobs",
                                                                "model",
                                                                "priority",
                                                                "messages"};
  for (absl::string_view f : kFields) {
    if (last == f) {
      if (f == "logprobs" && chat) return "top_logprobs";
      return std::string(f);
    }
  }
  return "";
}

}  // namespace

ApiError InvalidRequest(std::string param, std::string message) {
  ApiError e;
  e.http_status = 400;
  e.type = "invalid_request_error";
  e.param = std::move(param);
  e.message = std::move(message);
  return e;
}

std::string ErrorBody(const ApiError& error) {
  nlohmann::ordered_json body;
  nlohmann::ordered_json& e = body["error"];
  e["message"] = error.message;
  e["type"] = error.type;
  e["param"] =
      error.param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(error.param);
  e["code"] =
      error.code.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(error.code);
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

ApiError FromStatus(const absl::Status& status, bool chat) {
  const CodeMapping m = MapCode(status.code());
  ApiError e;
  e.http_status = m.http_status;
  e.type = m.type;
  e.message = std::string(status.message());
  if (e.message.empty()) e.message = absl::StatusCodeToString(status.code());
  e.param = ParamOf(status.message(), chat);
  if (status.code() == absl::StatusCode::kNotFound && e.param == "model") {
    e.code = "model_not_found";
  }
  return e;
}

std::optional<ApiError> CheckModel(absl::string_view requested,
                                   std::span<const std::string> served) {
  const absl::Status status = api::CheckModelName(requested, served, "router");
  if (status.ok()) return std::nullopt;
  return FromStatus(status);
}

}  // namespace tessera::router::openai
