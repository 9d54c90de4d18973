// Number and string literals of Jinja expressions, scanned as Jinja2's lexer
// does: integers (decimal with `_` separators, 0x/0o/0b), floats (fraction
// and/or exponent), and quoted strings with Python escape sequences. Internal
// to the lexer; pure and thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/jinja/lexer.h"

namespace tessera::jinja {

// Each scans the literal starting at src[pos], fills token.type/value (and
// int_value/float_value) and advances pos past it. On error returns
// INVALID_ARGUMENT with the bare message and sets error_pos to where it is.
absl::Status ScanNumber(const std::string& src, size_t& pos, Token& token, size_t& error_pos);
absl::Status ScanString(const std::string& src, size_t& pos, Token& token, size_t& error_pos);

}  // namespace tessera::jinja
