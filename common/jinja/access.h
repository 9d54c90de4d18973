// Attribute access, subscription, slicing, iteration and len() with the
// semantics of Jinja2's ImmutableSandboxedEnvironment: `x.name` tries the
// Python attribute (a method) then the item, `x[key]` the item then the
// attribute; a missing one is Undefined (not an error); attributes that would
// mutate (list.append, dict.pop, ...) are unsafe and fail when called.
// Pure functions over values; thread-safe for values not shared across threads.
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/value.h"

namespace tessera::jinja {

absl::StatusOr<Value> GetAttribute(const Value& obj, absl::string_view name);
absl::StatusOr<Value> GetItem(const Value& obj, const Value& key);
// obj[start:stop:step]; Undefined parts mean "absent".
absl::StatusOr<Value> SliceValue(const Value& obj, const Value& start, const Value& stop,
                                 const Value& step);
// Python iter(): list/tuple items, str code points, dict keys; Undefined is empty.
absl::StatusOr<std::vector<Value>> Iterate(const Value& v);
// Python len(); Undefined has length 0.
absl::StatusOr<int64_t> Length(const Value& v);
// An Undefined describing a failed lookup of `name` on `owner`.
Value MissingAttribute(const Value& owner, absl::string_view name);

}  // namespace tessera::jinja
