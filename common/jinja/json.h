// Conversions between nlohmann::json and template values, and Python's
// json.dumps (the `tojson` filter transformers installs). Thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/value.h"

namespace tessera::jinja {

// JSON -> Value: objects keep their key order (use nlohmann::ordered_json:
// Python dicts keep insertion order and `tojson` shows it); integers that fit in int64 are
// ints, other numbers floats. INVALID_ARGUMENT naming the JSON path (e.g.
// "messages[1].content") for a string that is not valid UTF-8 or nesting
// deeper than 256.
absl::StatusOr<Value> ValueFromJson(const nlohmann::ordered_json& json, const std::string& path);

struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;          // nullopt: single line
  std::optional<std::string> item_separator;  // default ", " (or "," with indent)
  std::optional<std::string> key_separator;   // default ": "
  bool sort_keys = false;
};

// Python json.dumps(value, ...). INVALID_ARGUMENT "Object of type X is not JSON
// serializable" for Undefined and objects, and for unsortable keys.
absl::StatusOr<std::string> PyJsonDumps(const Value& value, const JsonDumpOptions& options);

}  // namespace tessera::jinja
