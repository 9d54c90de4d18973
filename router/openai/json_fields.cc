#include "router/openai/json_fields.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace tessera::router::openai::internal {

void Fail(std::string param, std::string message) {
  throw BadRequest{InvalidRequest(std::move(param), std::move(message))};
}

ApiOr<OrderedJson> ParseObject(absl::string_view body) {
  bool too_deep = false;
  OrderedJson::parser_callback_t limit_depth = [&too_deep](int depth, OrderedJson::parse_event_t,
                                                           OrderedJson&) {
    if (depth > kMaxJsonDepth) too_deep = true;
    return !too_deep;
  };
  OrderedJson parsed =
      OrderedJson::parse(body.begin(), body.end(), limit_depth, /*allow_exceptions=*/false);
  if (too_deep) {
    return InvalidRequest(
        "", absl::StrCat("request body nests deeper than ", kMaxJsonDepth, " levels"));
  }
  if (parsed.is_discarded()) {
    // Parse again with exceptions for the parser's position and reason.
    try {
      OrderedJson ignored = OrderedJson::parse(body.begin(), body.end());
      (void)ignored;
    } catch (const nlohmann::json::exception& e) {
      return InvalidRequest("", absl::StrCat("request body is not valid JSON: ", e.what()));
    }
    return InvalidRequest("", "request body is not valid JSON");
  }
  if (!parsed.is_object()) {
    return InvalidRequest(
        "", absl::StrCat("request body must be a JSON object, got ", TypeName(parsed)));
  }
  return parsed;
}

std::string TypeName(const OrderedJson& value) {
  switch (value.type()) {
    case OrderedJson::value_t::null:
      return "null";
    case OrderedJson::value_t::object:
      return "an object";
    case OrderedJson::value_t::array:
      return "an array";
    case OrderedJson::value_t::string:
      return "a string";
    case OrderedJson::value_t::boolean:
      return "a boolean";
    case OrderedJson::value_t::number_integer:
    case OrderedJson::value_t::number_unsigned:
      return "an integer";
    case OrderedJson::value_t::number_float:
      return "a number";
    case OrderedJson::value_t::binary:
    case OrderedJson::value_t::discarded:
      break;
  }
  return "an unsupported value";
}

const OrderedJson* Find(const OrderedJson& object, absl::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<int64_t> AsInt(const OrderedJson& v, const std::string& param, int64_t lo,
                             int64_t hi) {
  if (v.is_null()) return std::nullopt;
  int64_t value = 0;
  bool in_range = true;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    in_range = u <= static_cast<uint64_t>(hi);
    value = in_range ? static_cast<int64_t>(u) : hi;
  } else if (v.is_number_integer()) {
    value = v.get<int64_t>();
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) &&
             std::trunc(v.get<double>()) == v.get<double>()) {
    const double d = v.get<double>();
    in_range = d >= static_cast<double>(lo) && d <= static_cast<double>(hi);
    value = in_range ? static_cast<int64_t>(d) : 0;
  } else {
    Fail(param, absl::StrCat("`", param, "` must be an integer, got ", TypeName(v)));
  }
  if (!in_range || value < lo || value > hi) {
    Fail(param,
         absl::StrCat("`", param, "` must be an integer in [", lo, ", ", hi, "], got ", v.dump()));
  }
  return value;
}

std::optional<int64_t> GetInt(const OrderedJson& object, absl::string_view key, int64_t lo,
                              int64_t hi) {
  const OrderedJson* v = Find(object, key);
  if (v == nullptr) return std::nullopt;
  return AsInt(*v, std::string(key), lo, hi);
}

std::optional<double> GetNumber(const OrderedJson& object, absl::string_view key) {
  const OrderedJson* v = Find(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) {
    Fail(std::string(key), absl::StrCat("`", key, "` must be a number, got ", TypeName(*v)));
  }
  return v->get<double>();
}

std::optional<bool> GetBool(const OrderedJson& object, absl::string_view key) {
  const OrderedJson* v = Find(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    Fail(std::string(key), absl::StrCat("`", key, "` must be a boolean, got ", TypeName(*v)));
  }
  return v->get<bool>();
}

std::optional<std::string> GetString(const OrderedJson& object, absl::string_view key) {
  const OrderedJson* v = Find(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    Fail(std::string(key), absl::StrCat("`", key, "` must be a string, got ", TypeName(*v)));
  }
  return v->get<std::string>();
}

std::string Dump(const OrderedJson& value) {
  return value.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

}  // namespace tessera::router::openai::internal
