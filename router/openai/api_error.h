// OpenAI-style API errors for the router's HTTP API: the typed error every
// parser and builder in router/openai/ returns, its JSON body
// ({"error": {"message", "type", "param", "code"}}, what the official
// `openai` SDK reads), and the mapping from Tessera's absl::Status codes to
// HTTP statuses. Value types and pure functions; thread-safe.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera::router::openai {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the request field at fault; empty = JSON null
  std::string code;   // a machine-readable code; empty = JSON null
};

// 400 invalid_request_error naming `param` (may be empty).
ApiError InvalidRequest(std::string param, std::string message);

// {"error":{"message":...,"type":...,"param":<string or null>,"code":<string
// or null>}}. Always valid UTF-8 (invalid bytes become U+FFFD).
std::string ErrorBody(const ApiError& error);

// `status` (not OK) as an ApiError; the message is kept. Codes:
//   INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION  400 invalid_request_error
//   UNAUTHENTICATED     401 authentication_error
//   PERMISSION_DENIED   403 permission_error
//   NOT_FOUND           404 not_found_error (code "model_not_found" when param is model)
//   ALREADY_EXISTS, ABORTED  409 conflict_error
//   RESOURCE_EXHAUSTED  429 rate_limit_error (the SDK retries it)
//   CANCELLED           499 request_cancelled (nginx's "client closed request";
//                       the client has normally gone already)
//   UNIMPLEMENTED       501 not_implemented_error
//   UNAVAILABLE         503 service_unavailable (the SDK retries it)
//   DEADLINE_EXCEEDED   504 timeout_error
//   INTERNAL, UNKNOWN, DATA_LOSS, OK  500 server_error
// `param`: Tessera's validation messages start with the field they are about
// ("sampling.temperature must be ...", "stop[1] is empty",
// "chat.chat_template_kwargs_json: must be ..."). When the message's first
// word is such a path and its last component (indices dropped) is a field the
// OpenAI API knows, param is that OpenAI field name (token_ids / text / chat /
// chat.messages -> "prompt" or "messages" per `chat`, chat_template_kwargs_json
// -> "chat_template_kwargs"); otherwise null.
ApiError FromStatus(const absl::Status& status, bool chat = false);

// The model check of every endpoint: OK when `requested` is empty (vLLM
// serves the default model then) or one of `served`; otherwise 404
// not_found_error, param "model", code "model_not_found".
std::optional<ApiError> CheckModel(absl::string_view requested,
                                   std::span<const std::string> served);

// A value or the ApiError that took its place (C++20 has no std::expected).
template <typename T>
class ApiOr {
 public:
  ApiOr(T value) : v_(std::move(value)) {}         // NOLINT: implicit like StatusOr
  ApiOr(ApiError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  const T& value() const& { return std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const ApiError& error() const { return std::get<1>(v_); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<T, ApiError> v_;
};

}  // namespace tessera::router::openai
