// Python methods of str, dict and list values that templates call
// (`s.startswith(...)`, `d.items()`, ...). Thread-safe.
#pragma once

#include <optional>
#include <string_view>

#include "absl/strings/string_view.h"
#include "common/jinja/value.h"

namespace tessera::jinja {

// The bound method `self.name`, an Undefined that fails when used for an
// unsafe (mutating) method, or nullopt when the type has no such method.
std::optional<Value> FindMethod(const Value& self, absl::string_view name);

}  // namespace tessera::jinja
