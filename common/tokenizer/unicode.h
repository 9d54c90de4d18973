// UTF-8 and Unicode helpers for the Hugging Face tokenizer: decoding code
// points, lossy UTF-8 repair (Rust's String::from_utf8_lossy), the character
// classes Rust's `char` methods use, and normalization forms (utf8proc).
// Stateless functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::hf {

inline constexpr char kReplacementChar[] = "\xEF\xBF\xBD";  // U+FFFD

// Byte length of the UTF-8 sequence that starts with `lead` in valid UTF-8.
inline int Utf8Length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// The code point at byte `i` of valid UTF-8 `s`; stores its length in `*len`.
uint32_t DecodeUtf8(absl::string_view s, size_t i, int* len);
// Appends the UTF-8 encoding of `cp` (<= U+10FFFF, not a surrogate).
void AppendUtf8(uint32_t cp, std::string* out);

// Byte offset of the first ill-formed UTF-8 byte in `s`, nullopt if it is
// well-formed (Unicode Table 3-7: no overlong forms, surrogates or > U+10FFFF).
std::optional<size_t> FindInvalidUtf8(absl::string_view s);

// Appends `in` to `out` with each maximal ill-formed subpart replaced by one
// U+FFFD (Rust's String::from_utf8_lossy, Python's errors="replace").
void AppendLossyUtf8(absl::string_view in, std::string* out);

// Rust's char::is_whitespace (the White_Space property).
bool IsWhitespace(uint32_t cp);
// Rust's char::is_numeric (general categories Nd, Nl, No).
bool IsNumeric(uint32_t cp);

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// True when `text` is certainly in the normal form already (a fast check
// that may say false for text that is).
bool IsNormalizedQuick(absl::string_view text, NormalForm form);
// `text` (valid UTF-8) in the normal form. INTERNAL if utf8proc fails.
absl::StatusOr<std::string> NormalizeUnicode(absl::string_view text, NormalForm form);

}  // namespace tessera::hf
