// Jinja2 lexer, configured as transformers configures chat templates:
// delimiters {{ }} {% %} {# #}, trim_blocks=True, lstrip_blocks=True,
// keep_trailing_newline=False, newlines normalised to "\n".
//
// Tokenize() turns template source into a flat token stream: text (already
// whitespace-controlled: `-`/`+` markers, trim_blocks, lstrip_blocks; raw
// blocks become text; comments vanish), tag delimiters, and the expression
// tokens inside tags. Pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::jinja {

enum class TokenType {
  kText,
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInteger,
  kFloat,
  kOperator,
  kEof,
};

struct Token {
  TokenType type;
  std::string value;  // text, name, decoded string literal, or operator spelling
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in bytes of the line
};

// A printable description of a token for syntax errors ("end of print statement", "'x'").
std::string DescribeToken(const Token& token);

// INVALID_ARGUMENT "... at line L, column C: ..." on a lexical error (unterminated
// comment/raw/string, unexpected character, unbalanced brackets, invalid UTF-8).
absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view source);

}  // namespace tessera::jinja
