// Number and string literals of the Jinja lexer (see literals.h).
#include "common/jinja/literals.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/py_repr.h"
#include "common/jinja/unicode.h"

namespace tessera::jinja {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

absl::Status ScanNumber(const std::string& src, size_t& pos, Token& token, size_t& error_pos) {
  const size_t n = src.size();
  const size_t start = pos;
  // Digits with single underscores between them: (\d+_)*\d+.
  auto digits = [&](size_t p) -> size_t {
    if (p >= n || !IsDigit(src[p])) return std::string::npos;
    while (p < n) {
      while (p < n && IsDigit(src[p])) ++p;
      if (p + 1 < n && src[p] == '_' && IsDigit(src[p + 1])) {
        ++p;
        continue;
      }
      break;
    }
    return p;
  };
  auto exponent = [&](size_t p) -> size_t {
    if (p >= n || (src[p] != 'e' && src[p] != 'E')) return std::string::npos;
    ++p;
    if (p < n && (src[p] == '+' || src[p] == '-')) ++p;
    return digits(p);
  };
  auto clean = [&](size_t b, size_t e) {
    std::string s = src.substr(b, e - b);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    return s;
  };
  // Float: not right after '.', so `x.0.1` stays attribute access.
  if (start == 0 || src[start - 1] != '.') {
    const size_t int_end = digits(start);
    size_t end = std::string::npos;
    if (int_end < n && src[int_end] == '.' && digits(int_end + 1) != std::string::npos) {
      end = digits(int_end + 1);
      const size_t e = exponent(end);
      if (e != std::string::npos) end = e;
    } else {
      end = exponent(int_end);
    }
    if (end != std::string::npos) {
      token.type = TokenType::kFloat;
      token.value = src.substr(start, end - start);
      token.float_value = std::strtod(clean(start, end).c_str(), nullptr);
      pos = end;
      return absl::OkStatus();
    }
  }
  int base = 10;
  size_t p = start;
  if (src[p] == '0' && p + 1 < n) {
    const char x = src[p + 1];
    base = (x == 'x' || x == 'X')   ? 16
           : (x == 'o' || x == 'O') ? 8
           : (x == 'b' || x == 'B') ? 2
                                    : 10;
  }
  size_t end = p;
  if (base != 10) {
    end = p + 2;
    auto ok = [&](char c) {
      return base == 16 ? IsHex(c) : base == 8 ? (c >= '0' && c <= '7') : (c == '0' || c == '1');
    };
    while (end < n) {
      if (src[end] == '_' && end + 1 < n && ok(src[end + 1])) {
        end += 2;
      } else if (ok(src[end])) {
        ++end;
      } else {
        break;
      }
    }
    if (end == p + 2) base = 10, end = p;
  }
  if (base == 10) {
    if (src[p] == '0') {
      end = p + 1;
      while (end < n &&
             (src[end] == '0' || (src[end] == '_' && end + 1 < n && src[end + 1] == '0'))) {
        ++end;
      }
    } else {
      end = digits(p);
    }
  }
  const std::string text = clean(base == 10 ? p : p + 2, end);
  errno = 0;
  char* parse_end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &parse_end, base);
  if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX)) {
    error_pos = start;
    return absl::InvalidArgumentError("integer literal does not fit in 64 bits");
  }
  token.type = TokenType::kInteger;
  token.value = src.substr(start, end - start);
  token.int_value = static_cast<int64_t>(v);
  pos = end;
  return absl::OkStatus();
}

absl::Status ScanString(const std::string& src, size_t& pos, Token& token, size_t& error_pos) {
  const size_t n = src.size();
  const char quote = src[pos];
  const size_t start = pos;
  std::string out;
  size_t p = pos + 1;
  auto hex = [&](size_t at, int count, char32_t& cp) {
    cp = 0;
    if (at + count > n) return false;
    for (int k = 0; k < count; ++k) {
      const char c = src[at + k];
      if (!IsHex(c)) return false;
      cp = cp * 16 + static_cast<char32_t>(IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return true;
  };
  while (true) {
    if (p >= n) {
      error_pos = start;
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected char ", PyStrRepr(std::string(1, quote))));
    }
    const char c = src[p];
    if (c == quote) break;
    if (c != '\\') {
      out += c;
      ++p;
      continue;
    }
    if (p + 1 >= n) {
      error_pos = start;
      return absl::InvalidArgumentError("unterminated string literal");
    }
    const char e = src[p + 1];
    p += 2;
    char32_t cp = 0;
    switch (e) {
      case '\n':
        break;
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x':
      case 'u':
      case 'U': {
        const int count = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (!hex(p, count, cp)) {
          error_pos = p - 2;
          return absl::InvalidArgumentError(
              absl::StrCat("truncated \\", std::string(1, e), " escape"));
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
          error_pos = p - 2;
          return absl::InvalidArgumentError("escape is not a valid Unicode scalar value");
        }
        AppendUtf8(cp, out);
        p += count;
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          cp = static_cast<char32_t>(e - '0');
          for (int k = 0; k < 2 && p < n && src[p] >= '0' && src[p] <= '7'; ++k, ++p) {
            cp = cp * 8 + static_cast<char32_t>(src[p] - '0');
          }
          AppendUtf8(cp, out);
        } else {
          out += '\\';
          --p;  // keep the character after the backslash as text
        }
    }
  }
  token.type = TokenType::kString;
  token.value = std::move(out);
  pos = p + 1;
  return absl::OkStatus();
}

}  // namespace tessera::jinja
