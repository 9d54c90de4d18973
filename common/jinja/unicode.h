// UTF-8 and Python `str` helpers for the Jinja interpreter.
//
// Jinja2 runs on Python strings (sequences of code points); the interpreter
// keeps UTF-8 bytes and uses these helpers wherever Python semantics depend on
// code points: len(), indexing and slicing, str.isspace(), upper()/lower(),
// splitlines(). All functions are pure and thread-safe. Inputs are assumed to
// be valid UTF-8 (checked once where text enters: template source and context).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace tessera::jinja {

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// Decodes valid UTF-8 into code points.
std::vector<char32_t> DecodeUtf8(absl::string_view s);
// Appends the UTF-8 encoding of `cp` to `out`.
void AppendUtf8(char32_t cp, std::string& out);
std::string EncodeUtf8(const std::vector<char32_t>& cps);

// Number of code points (Python len()).
int64_t CodePointCount(absl::string_view s);
// True when every byte is < 0x80 (then bytes are code points).
bool IsAscii(absl::string_view s);

// Python str.isspace() for one code point.
bool IsPySpace(char32_t cp);
// Python str.splitlines() line boundaries (\n \r \r\n \v \f \x1c-\x1e \x85
// \u2028 \u2029).
bool IsPyLineBreak(char32_t cp);
// Python \w in a Unicode pattern: alphanumeric or underscore.
bool IsPyWordChar(char32_t cp);
// Python str.isprintable() for one code point (used by repr()).
bool IsPyPrintable(char32_t cp);

// Python str.upper()/lower()/isupper()/islower() (simple case mappings).
std::string PyUpper(absl::string_view s);
std::string PyLower(absl::string_view s);
char32_t PyUpperChar(char32_t cp);
char32_t PyLowerChar(char32_t cp);
bool PyIsUpper(absl::string_view s);
bool PyIsLower(absl::string_view s);

// Python str.strip()/lstrip()/rstrip(): with `chars` == nullptr strips
// whitespace (IsPySpace), otherwise the code points of *chars.
absl::string_view PyStrip(absl::string_view s, const std::string* chars, bool left, bool right);

// Python str.splitlines(keepends=False).
std::vector<std::string> PySplitLines(absl::string_view s);

}  // namespace tessera::jinja
