// Python's text forms of scalars, which Jinja2 output depends on:
// float.__repr__ (shortest round-trip, "1.0", "1e+16", "1e-05", "inf", "nan")
// and str.__repr__ (quote choice and escapes). Pure, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace tessera::jinja {

std::string PyFloatRepr(double d);
std::string PyStrRepr(absl::string_view s);

}  // namespace tessera::jinja
