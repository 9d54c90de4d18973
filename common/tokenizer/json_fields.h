// Typed access to tokenizer.json / tokenizer_config.json fields with errors
// that name the JSON path (e.g. "tokenizer.json: pre_tokenizer.pretokenizers[1].pattern").
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer/regex.h"
#include "nlohmann/json.hpp"

namespace tessera::hf {

using Json = nlohmann::json;

// "path.key".
std::string JoinPath(absl::string_view path, absl::string_view key);
// "path[index]".
std::string JoinPath(absl::string_view path, size_t index);

// The `type` string of component object `j` at `path`.
absl::StatusOr<std::string> ComponentType(const Json& j, absl::string_view path);
// UNIMPLEMENTED: "<path>: <kind> type \"<type>\" is not supported (supported: <list>)".
absl::Status UnsupportedType(absl::string_view path, absl::string_view kind, absl::string_view type,
                             absl::string_view supported);

// Required string field `key`.
absl::StatusOr<std::string> StringField(const Json& j, absl::string_view key,
                                        absl::string_view path);
// Optional string field: nullopt when absent or null.
absl::StatusOr<std::optional<std::string>> OptionalStringField(const Json& j, absl::string_view key,
                                                               absl::string_view path);
// Boolean field, `fallback` when absent or null.
absl::StatusOr<bool> BoolField(const Json& j, absl::string_view key, bool fallback,
                               absl::string_view path);
// Non-negative integer field, `fallback` when absent or null.
absl::StatusOr<int64_t> IntField(const Json& j, absl::string_view key, int64_t fallback,
                                 absl::string_view path);
// Required array field.
absl::StatusOr<const Json*> ArrayField(const Json& j, absl::string_view key,
                                       absl::string_view path);
// A pattern object {"String": s} or {"Regex": r} at field `key`.
absl::StatusOr<std::unique_ptr<Pattern>> PatternField(const Json& j, absl::string_view key,
                                                      absl::string_view path);

}  // namespace tessera::hf
