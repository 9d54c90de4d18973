// Jinja2 parser: token stream -> syntax tree, following Jinja2's own grammar
// (jinja2/parser.py) for the statements and expressions chat templates use.
//
// Supported tags: if/elif/else, for (targets, `if` filter, else), set (value,
// tuple, namespace attribute, block form with filters), macro, call, filter,
// with, break/continue (loopcontrols), generation (transformers' extension),
// raw and comments (handled by the lexer). Other tags (include, extends,
// block, import, ...) are syntax errors. Pure and thread-safe.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/ast.h"

namespace tessera::jinja {

// Maximum nesting of blocks and expressions; deeper input is rejected rather
// than recursed into (untrusted templates must not exhaust the stack).
inline constexpr int kMaxParseDepth = 200;

// INVALID_ARGUMENT "template syntax error at line L, column C: ..." when the
// source is not a valid template.
absl::StatusOr<Body> ParseTemplate(absl::string_view source);

}  // namespace tessera::jinja
