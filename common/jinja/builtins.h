// Jinja2's builtin filters, tests and global functions, as configured by
// transformers (ImmutableSandboxedEnvironment, tojson = json.dumps with
// ensure_ascii=False, raise_exception, strftime_now). Lookup tables are
// immutable and thread-safe.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/value.h"

namespace tessera::jinja {

using FilterFn = absl::StatusOr<Value> (*)(Renderer& renderer, const Value& input,
                                           const CallArgs& args);
using TestFn = absl::StatusOr<bool> (*)(Renderer& renderer, const Value& input,
                                        const CallArgs& args);

// nullptr when there is no such filter / test / global.
FilterFn FindFilter(absl::string_view name);
TestFn FindTest(absl::string_view name);
const Value* FindGlobal(absl::string_view name);

// Filter tables split by topic (filters_text.cc, filters_seq.cc).
FilterFn FindTextFilter(absl::string_view name);
FilterFn FindSequenceFilter(absl::string_view name);

// Jinja2's make_attrgetter: `item[part]` for each dot-separated part of
// `attribute` (digit parts are integer indices).
absl::StatusOr<Value> GetAttrPath(const Value& item, const Value& attribute);

}  // namespace tessera::jinja
