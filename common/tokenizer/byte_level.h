// GPT-2's byte-level alphabet (bytes_to_unicode): each byte 0..255 maps to one
// printable code point, so any byte string is a string of vocabulary
// characters. Used by the ByteLevel pre-tokenizer and decoder. Immutable
// tables; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace tessera::hf {

// The UTF-8 of the character that stands for byte `b`.
absl::string_view ByteToChar(uint8_t b);
// The byte that code point `cp` stands for, nullopt if it is not in the map.
std::optional<uint8_t> CharToByte(uint32_t cp);
// Appends the byte-level characters of `bytes` to `out`.
void AppendByteLevel(absl::string_view bytes, std::string* out);

}  // namespace tessera::hf
