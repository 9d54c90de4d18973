#include "common/tokenizer/unicode.h"

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "utf8proc.h"

namespace tessera::hf {
namespace {

// Length of the sequence a lead byte starts (0 when it cannot start one) and
// the allowed range of the byte after it (Unicode Table 3-7).
struct Lead {
  int length;
  unsigned char lo, hi;
};
Lead ClassifyLead(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes of `s` from `i` form a well-formed sequence (its length) or,
// when negative, minus the length of the maximal ill-formed subpart there.
int Scan(absl::string_view s, size_t i) {
  const Lead lead = ClassifyLead(static_cast<unsigned char>(s[i]));
  if (lead.length == 0) return -1;
  int j = 1;
  for (; j < lead.length; ++j) {
    if (i + j >= s.size()) return -j;
    const unsigned char c = static_cast<unsigned char>(s[i + j]);
    const unsigned char lo = j == 1 ? lead.lo : 0x80;
    const unsigned char hi = j == 1 ? lead.hi : 0xBF;
    if (c < lo || c > hi) return -j;
  }
  return lead.length;
}

}  // namespace

uint32_t DecodeUtf8(absl::string_view s, size_t i, int* len) {
  const unsigned char b = static_cast<unsigned char>(s[i]);
  const int n = Utf8Length(b);
  *len = n;
  if (n == 1) return b;
  uint32_t cp = b & (0x7F >> n);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::optional<size_t> FindInvalidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const int n = Scan(s, i);
    if (n < 0) return i;
    i += n;
  }
  return std::nullopt;
}

void AppendLossyUtf8(absl::string_view in, std::string* out) {
  size_t i = 0;
  while (i < in.size()) {
    size_t ascii = i;
    while (ascii < in.size() && static_cast<unsigned char>(in[ascii]) < 0x80) ++ascii;
    out->append(in.data() + i, ascii - i);
    i = ascii;
    if (i == in.size()) break;
    const int n = Scan(in, i);
    if (n > 0) {
      out->append(in.data() + i, n);
      i += n;
    } else {
      out->append(kReplacementChar);
      i += -n;
    }
  }
}

bool IsWhitespace(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool IsNumeric(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  const utf8proc_category_t c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

bool IsNormalizedQuick(absl::string_view text, NormalForm form) {
  // Code points below U+0300 are unchanged by NFC; ASCII by every form.
  const unsigned char limit = form == NormalForm::kNFC ? 0xCC : 0x80;
  for (unsigned char b : text) {
    if (b >= limit) return false;
  }
  return true;
}

absl::StatusOr<std::string> NormalizeUnicode(absl::string_view text, NormalForm form) {
  if (IsNormalizedQuick(text, form)) return std::string(text);
  int options = UTF8PROC_STABLE;
  switch (form) {
    case NormalForm::kNFC:
      options |= UTF8PROC_COMPOSE;
      break;
    case NormalForm::kNFD:
      options |= UTF8PROC_DECOMPOSE;
      break;
    case NormalForm::kNFKC:
      options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
      break;
    case NormalForm::kNFKD:
      options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
      break;
  }
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &dst,
                                          static_cast<utf8proc_option_t>(options));
  if (n < 0) {
    return absl::InternalError(absl::StrCat("unicode normalization failed: ", utf8proc_errmsg(n)));
  }
  std::string out(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
  std::free(dst);
  return out;
}

}  // namespace tessera::hf
