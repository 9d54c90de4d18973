// Python `str` algorithms on UTF-8 text (split, replace, find, title, format,
// ...), shared by the str methods and the filters. Pure, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/value.h"

namespace tessera::jinja {

// str.split(sep, maxsplit) / str.rsplit; sep nullopt splits on whitespace runs.
// INVALID_ARGUMENT for an empty separator.
absl::StatusOr<std::vector<std::string>> PySplit(absl::string_view s,
                                                 const std::optional<std::string>& sep,
                                                 int64_t maxsplit, bool from_right);
// str.replace(old, new, count); count < 0 means all.
std::string PyReplace(absl::string_view s, absl::string_view old, absl::string_view repl,
                      int64_t count);
// str.find / str.rfind over code point indices [start, end) (end < 0: to the end
// after Python's negative-index adjustment, done by the caller). -1 when absent.
int64_t PyFind(absl::string_view s, absl::string_view sub, bool from_right);
// str.count(sub) (non-overlapping).
int64_t PyCount(absl::string_view s, absl::string_view sub);
// str.title() and str.capitalize().
std::string PyTitle(absl::string_view s);
std::string PyCapitalize(absl::string_view s);
// str.format(*args, **kwargs) for "{}", "{0}", "{name}", "{{", "}}" and
// fields with attribute/index lookups; format specs are not supported.
absl::StatusOr<std::string> PyStrFormat(absl::string_view fmt, const CallArgs& args);

}  // namespace tessera::jinja
