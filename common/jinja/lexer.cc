#include "common/jinja/lexer.h"

#include <algorithm>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/literals.h"
#include "common/jinja/py_repr.h"
#include "common/jinja/unicode.h"

namespace tessera::jinja {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }

// Jinja2 normalises every newline to "\n" and drops one trailing newline.
std::string Normalize(absl::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

enum class TagKind { kVariable, kBlock, kComment };

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  absl::StatusOr<std::vector<Token>> Run();

 private:
  absl::Status Error(size_t pos, absl::string_view msg) const {
    auto [line, col] = Position(pos);
    return absl::InvalidArgumentError(
        absl::StrCat("template syntax error at line ", line, ", column ", col, ": ", msg));
  }
  std::pair<int, int> Position(size_t pos) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
    const size_t line = static_cast<size_t>(it - line_starts_.begin());
    return {static_cast<int>(line), static_cast<int>(pos - line_starts_[line - 1] + 1)};
  }
  void Emit(TokenType type, size_t pos, std::string value = {}) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    std::tie(t.line, t.column) = Position(pos);
    tokens_.push_back(std::move(t));
  }
  bool StartsWith(size_t pos, absl::string_view s) const {
    return absl::string_view(src_).substr(std::min(pos, src_.size()), s.size()) == s;
  }
  // Skips Python whitespace from pos; returns the new position.
  size_t SkipSpace(size_t pos) const {
    while (pos < src_.size()) {
      size_t next = pos;
      const auto c = static_cast<unsigned char>(src_[pos]);
      if (c < 0x80) {
        if (!IsPySpace(c)) break;
        ++next;
      } else {
        const int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        const auto cps = DecodeUtf8(absl::string_view(src_).substr(pos, len));
        if (cps.empty() || !IsPySpace(cps[0])) break;
        next += len;
      }
      pos = next;
    }
    return pos;
  }
  // Emits text in [begin, end) with the whitespace control of the tag after it.
  void EmitText(size_t begin, size_t end, char sign, bool lstrip_allowed);
  // Matches `{%[-+]? raw [-]?%}` at pos; returns the position after it or npos.
  size_t MatchRawBegin(size_t pos) const;
  // Matches a block end (`+%}`, `-%}\s*`, `%}\n?`) at pos; npos when absent.
  size_t MatchBlockEnd(size_t pos) const;
  absl::Status LexTag(TagKind kind, size_t& pos);
  // Scans a literal with `scan` (literals.h) and emits its token.
  template <typename Scan>
  absl::Status LexLiteral(size_t& pos, Scan scan) {
    Token token;
    std::tie(token.line, token.column) = Position(pos);
    size_t error_pos = pos;
    if (absl::Status s = scan(src_, pos, token, error_pos); !s.ok()) {
      return Error(error_pos, s.message());
    }
    tokens_.push_back(std::move(token));
    return absl::OkStatus();
  }

  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  bool line_starting_ = true;
};

void Lexer::EmitText(size_t begin, size_t end, char sign, bool lstrip_allowed) {
  absl::string_view text = absl::string_view(src_).substr(begin, end - begin);
  if (sign == '-') {
    text = PyStrip(text, nullptr, false, true);
  } else if (sign != '+' && lstrip_allowed) {
    const size_t nl = text.rfind('\n');
    const size_t l_pos = nl == absl::string_view::npos ? 0 : nl + 1;
    if ((l_pos > 0 || line_starting_) && l_pos < text.size() &&
        PyStrip(text.substr(l_pos), nullptr, true, false).empty()) {
      text = text.substr(0, l_pos);
    }
  }
  if (!text.empty()) Emit(TokenType::kText, begin, std::string(text));
}

size_t Lexer::MatchRawBegin(size_t pos) const {
  size_t p = pos + 2;
  if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
  p = SkipSpace(p);
  if (!StartsWith(p, "raw")) return std::string::npos;
  p = SkipSpace(p + 3);
  if (StartsWith(p, "-%}")) return SkipSpace(p + 3);
  if (StartsWith(p, "%}")) return p + 2;
  return std::string::npos;
}

size_t Lexer::MatchBlockEnd(size_t pos) const {
  if (StartsWith(pos, "+%}")) return pos + 3;
  if (StartsWith(pos, "-%}")) return SkipSpace(pos + 3);
  if (StartsWith(pos, "%}")) return pos + 2 + (StartsWith(pos + 2, "\n") ? 1 : 0);
  return std::string::npos;
}

absl::StatusOr<std::vector<Token>> Lexer::Run() {
  size_t pos = 0;
  const size_t n = src_.size();
  while (pos < n) {
    size_t tag = pos;
    TagKind kind = TagKind::kVariable;
    for (;; ++tag) {
      tag = src_.find('{', tag);
      if (tag == std::string::npos || tag + 1 >= n) {
        tag = std::string::npos;
        break;
      }
      const char c = src_[tag + 1];
      if (c == '{' || c == '%' || c == '#') {
        kind = c == '{' ? TagKind::kVariable : c == '%' ? TagKind::kBlock : TagKind::kComment;
        break;
      }
    }
    if (tag == std::string::npos) {
      Emit(TokenType::kText, pos, src_.substr(pos));
      break;
    }
    const char sign =
        (tag + 2 < n && (src_[tag + 2] == '-' || src_[tag + 2] == '+')) ? src_[tag + 2] : 0;
    const size_t raw_end = kind == TagKind::kBlock ? MatchRawBegin(tag) : std::string::npos;
    EmitText(pos, tag, sign, kind != TagKind::kVariable);
    if (raw_end != std::string::npos) {
      // Raw block: text up to the first `{%[-+]? endraw [-+]?%}`.
      size_t p = raw_end;
      for (;; ++p) {
        p = src_.find("{%", p);
        if (p == std::string::npos) return Error(tag, "Missing end of raw directive");
        size_t q = p + 2;
        const char end_sign = (q < n && (src_[q] == '-' || src_[q] == '+')) ? src_[q] : 0;
        if (end_sign) ++q;
        q = SkipSpace(q);
        if (!StartsWith(q, "endraw")) continue;
        const size_t after = MatchBlockEnd(SkipSpace(q + 6));
        if (after == std::string::npos) continue;
        line_starting_ = false;  // the raw begin tag ends with "}"
        EmitText(raw_end, p, end_sign, true);
        line_starting_ = src_[after - 1] == '\n';
        pos = after;
        break;
      }
      continue;
    }
    if (kind == TagKind::kComment) {
      size_t p = tag + 2 + (sign ? 1 : 0);
      size_t after = std::string::npos;
      for (; p + 1 < n; ++p) {
        if (StartsWith(p, "+#}")) {
          after = p + 3;
        } else if (StartsWith(p, "-#}")) {
          after = SkipSpace(p + 3);
        } else if (StartsWith(p, "#}")) {
          after = p + 2 + (StartsWith(p + 2, "\n") ? 1 : 0);
        }
        if (after != std::string::npos) break;
      }
      if (after == std::string::npos) return Error(tag, "Missing end of comment tag");
      line_starting_ = src_[after - 1] == '\n';
      pos = after;
      continue;
    }
    pos = tag + 2 + (sign ? 1 : 0);
    Emit(kind == TagKind::kBlock ? TokenType::kBlockBegin : TokenType::kVariableBegin, tag);
    if (absl::Status s = LexTag(kind, pos); !s.ok()) return s;
  }
  Emit(TokenType::kEof, n);
  return std::move(tokens_);
}

absl::Status Lexer::LexTag(TagKind kind, size_t& pos) {
  const size_t n = src_.size();
  std::vector<char> brackets;
  while (true) {
    pos = SkipSpace(pos);
    if (pos >= n) return Error(pos, "unexpected end of template, expected the end of the tag");
    if (brackets.empty()) {
      size_t after = std::string::npos;
      if (kind == TagKind::kBlock) {
        after = MatchBlockEnd(pos);
      } else if (StartsWith(pos, "-}}")) {
        after = SkipSpace(pos + 3);
      } else if (StartsWith(pos, "}}")) {
        after = pos + 2;
      }
      if (after != std::string::npos) {
        Emit(kind == TagKind::kBlock ? TokenType::kBlockEnd : TokenType::kVariableEnd, pos);
        line_starting_ = src_[after - 1] == '\n';
        pos = after;
        return absl::OkStatus();
      }
    }
    const char c = src_[pos];
    if (IsDigit(c)) {
      if (absl::Status s = LexLiteral(pos, ScanNumber); !s.ok()) return s;
      continue;
    }
    if (IsNameStart(c)) {
      size_t end = pos;
      while (end < n && IsNameChar(src_[end])) ++end;
      Emit(TokenType::kName, pos, src_.substr(pos, end - pos));
      pos = end;
      continue;
    }
    if (c == '\'' || c == '"') {
      if (absl::Status s = LexLiteral(pos, ScanString); !s.ok()) return s;
      continue;
    }
    static constexpr absl::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    std::string op;
    for (absl::string_view two : kTwo) {
      if (StartsWith(pos, two)) op = std::string(two);
    }
    if (op.empty() &&
        absl::string_view("+-/*%~[](){}><=.:|,;").find(c) != absl::string_view::npos) {
      op = std::string(1, c);
    }
    if (op.empty()) {
      size_t len = 1;
      while (pos + len < n && (static_cast<unsigned char>(src_[pos + len]) & 0xC0) == 0x80) ++len;
      return Error(pos, absl::StrCat("unexpected char ", PyStrRepr(src_.substr(pos, len))));
    }
    if (op == "(" || op == "[" || op == "{") {
      brackets.push_back(op[0] == '(' ? ')' : op[0] == '[' ? ']' : '}');
    } else if (op == ")" || op == "]" || op == "}") {
      if (brackets.empty()) return Error(pos, absl::StrCat("unexpected '", op, "'"));
      if (brackets.back() != op[0]) {
        return Error(pos, absl::StrCat("unexpected '", op, "', expected '",
                                       std::string(1, brackets.back()), "'"));
      }
      brackets.pop_back();
    }
    Emit(TokenType::kOperator, pos, op);
    pos += op.size();
  }
}

}  // namespace

std::string DescribeToken(const Token& token) {
  switch (token.type) {
    case TokenType::kText:
      return "template data";
    case TokenType::kVariableBegin:
      return "begin of print statement";
    case TokenType::kVariableEnd:
      return "end of print statement";
    case TokenType::kBlockBegin:
      return "begin of statement block";
    case TokenType::kBlockEnd:
      return "end of statement block";
    case TokenType::kName:
    case TokenType::kOperator:
      return token.value;
    case TokenType::kString:
      return "string";
    case TokenType::kInteger:
      return "integer";
    case TokenType::kFloat:
      return "float";
    case TokenType::kEof:
      return "end of template";
  }
  return "token";
}

absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view source) {
  if (!IsValidUtf8(source)) return absl::InvalidArgumentError("template source is not valid UTF-8");
  return Lexer(Normalize(source)).Run();
}

}  // namespace tessera::jinja
