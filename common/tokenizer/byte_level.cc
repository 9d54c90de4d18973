#include "common/tokenizer/byte_level.h"

#include <array>

#include "common/tokenizer/unicode.h"

namespace tessera::hf {
namespace {

struct Tables {
  std::array<std::string, 256> byte_to_char;
  std::array<int16_t, 324> char_to_byte;  // code points < 256 + 68
  Tables() {
    char_to_byte.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const uint32_t cp = printable ? b : next++;
      AppendUtf8(cp, &byte_to_char[b]);
      char_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& GetTables() {
  static const Tables* tables = new Tables();
  return *tables;
}

}  // namespace

absl::string_view ByteToChar(uint8_t b) { return GetTables().byte_to_char[b]; }

std::optional<uint8_t> CharToByte(uint32_t cp) {
  const Tables& t = GetTables();
  if (cp >= t.char_to_byte.size() || t.char_to_byte[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(t.char_to_byte[cp]);
}

void AppendByteLevel(absl::string_view bytes, std::string* out) {
  const Tables& t = GetTables();
  // Every character of the map is 1 or 2 bytes of UTF-8.
  const size_t start = out->size();
  out->resize(start + 2 * bytes.size());
  char* p = out->data() + start;
  for (unsigned char b : bytes) {
    const std::string& c = t.byte_to_char[b];
    p[0] = c[0];
    if (c.size() == 2) p[1] = c[1];
    p += c.size();
  }
  out->resize(p - out->data());
}

}  // namespace tessera::hf
