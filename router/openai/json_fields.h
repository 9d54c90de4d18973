// Internal to router/openai/: typed reads of request fields out of a parsed
// JSON body, each failing with a 400 that names the field. Inside the
// library a failure is thrown as BadRequest and every public entry point
// catches it (and nlohmann's own exceptions), so no exception leaves
// router/openai/. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "router/openai/api_error.h"

namespace tessera::router::openai::internal {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Bodies nest at most this deep (objects and arrays); deeper ones are a 400,
// so nothing downstream (dump, templates) recurses without bound.
inline constexpr int kMaxJsonDepth = 64;

struct BadRequest {
  ApiError error;
};

[[noreturn]] void Fail(std::string param, std::string message);

// The body as a JSON object: 400 for text that is not JSON, JSON that is not
// an object, or nesting deeper than kMaxJsonDepth. Ordered, so message fields
// keep the client's key order (as Python dicts do for templates).
ApiOr<OrderedJson> ParseObject(absl::string_view body);

// "a string", "an integer", "null", ... for messages.
std::string TypeName(const OrderedJson& value);

// The field `key` of `object`, nullptr when absent or null (OpenAI and vLLM
// treat an explicit null as "not given").
const OrderedJson* Find(const OrderedJson& object, absl::string_view key);

// Typed reads: nullopt when absent or null; otherwise the value, or a 400
// naming `param` (default: `key`). An integer may be written as a float
// with no fractional part (16.0), as pydantic accepts; strings are never
// numbers.
std::optional<int64_t> GetInt(const OrderedJson& object, absl::string_view key, int64_t lo,
                              int64_t hi);
std::optional<int64_t> AsInt(const OrderedJson& value, const std::string& param, int64_t lo,
                             int64_t hi);
std::optional<double> GetNumber(const OrderedJson& object, absl::string_view key);
std::optional<bool> GetBool(const OrderedJson& object, absl::string_view key);
std::optional<std::string> GetString(const OrderedJson& object, absl::string_view key);

// Compact JSON text, invalid UTF-8 replaced by U+FFFD (never throws on text).
std::string Dump(const OrderedJson& value);

// Runs `fn` (which may throw BadRequest or nlohmann exceptions) and turns a
// throw into an ApiError (400 for bad input).
template <typename T, typename Fn>
ApiOr<T> Guard(Fn&& fn) {
  try {
    return fn();
  } catch (const BadRequest& bad) {
    return bad.error;
  } catch (const nlohmann::json::exception& e) {
    return InvalidRequest("", std::string("invalid request body: ") + e.what());
  } catch (const std::exception& e) {
    return InvalidRequest("", std::string("invalid request: ") + e.what());
  }
}

}  // namespace tessera::router::openai::internal
