// Python-style argument binding for builtins (filters, tests, methods,
// globals): positional then keyword arguments matched against a signature,
// with defaults. Thread-safe.
#pragma once

#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/value.h"

namespace tessera::jinja {

struct Param {
  absl::string_view name;
  std::optional<Value> default_value;  // nullopt: required
};

// Binds `args` to `params` of the function `fn` (for messages). Returns one
// value per param. INVALID_ARGUMENT for a missing required argument, too many
// positional arguments, or an unknown/duplicate keyword.
absl::StatusOr<std::vector<Value>> BindArgs(absl::string_view fn, const CallArgs& args,
                                            std::initializer_list<Param> params);

// Integer argument `v` (int or bool) named `what`, or INVALID_ARGUMENT.
absl::StatusOr<int64_t> IntArg(const Value& v, absl::string_view what);
// String argument, or INVALID_ARGUMENT naming `what`.
absl::StatusOr<std::string> StrArg(const Value& v, absl::string_view what);

}  // namespace tessera::jinja
