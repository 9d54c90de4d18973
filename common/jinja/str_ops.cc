#include "common/jinja/str_ops.h"

#include <algorithm>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/access.h"
#include "common/jinja/operators.h"
#include "common/jinja/py_repr.h"
#include "common/jinja/unicode.h"

namespace tessera::jinja {
namespace {
// Bound on the text a single str.format() / `%` builds (templates are untrusted).
constexpr size_t kMaxFormattedBytes = 64 << 20;
absl::Status TooLong() { return absl::InvalidArgumentError("formatted string exceeds 64 MiB"); }
}  // namespace

absl::StatusOr<std::vector<std::string>> PySplit(absl::string_view s,
                                                 const std::optional<std::string>& sep,
                                                 int64_t maxsplit, bool from_right) {
  std::vector<std::string> out;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep.has_value()) {
    if (sep->empty()) return absl::InvalidArgumentError("empty separator");
    if (!from_right) {
      size_t pos = 0;
      while (static_cast<int64_t>(out.size()) < maxsplit) {
        const size_t at = s.find(*sep, pos);
        if (at == absl::string_view::npos) break;
        out.emplace_back(s.substr(pos, at - pos));
        pos = at + sep->size();
      }
      out.emplace_back(s.substr(pos));
      return out;
    }
    size_t end = s.size();
    int64_t splits = 0;
    while (splits < maxsplit && end >= sep->size()) {
      const size_t at = s.rfind(*sep, end - sep->size());
      if (at == absl::string_view::npos) break;
      out.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
      end = at;
      ++splits;
    }
    out.emplace_back(s.substr(0, end));
    std::reverse(out.begin(), out.end());
    return out;
  }
  // Whitespace split over code points.
  const std::vector<char32_t> cps = DecodeUtf8(s);
  const size_t n = cps.size();
  auto piece = [&](size_t b, size_t e) {
    return EncodeUtf8(std::vector<char32_t>(cps.begin() + static_cast<ptrdiff_t>(b),
                                            cps.begin() + static_cast<ptrdiff_t>(e)));
  };
  if (!from_right) {
    size_t i = 0;
    while (true) {
      while (i < n && IsPySpace(cps[i])) ++i;
      if (i >= n) break;
      if (static_cast<int64_t>(out.size()) >= maxsplit) {
        out.push_back(piece(i, n));  // the rest, trailing whitespace included
        break;
      }
      size_t j = i;
      while (j < n && !IsPySpace(cps[j])) ++j;
      out.push_back(piece(i, j));
      i = j;
    }
    return out;
  }
  size_t i = n;
  while (true) {
    while (i > 0 && IsPySpace(cps[i - 1])) --i;
    if (i == 0) break;
    if (static_cast<int64_t>(out.size()) >= maxsplit) {
      out.push_back(piece(0, i));  // the rest, leading whitespace included
      break;
    }
    size_t j = i;
    while (j > 0 && !IsPySpace(cps[j - 1])) --j;
    out.push_back(piece(j, i));
    i = j;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::string PyReplace(absl::string_view s, absl::string_view old, absl::string_view repl,
                      int64_t count) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  if (old.empty()) {
    // Inserts `repl` before every code point and at the end, `count` times.
    const std::vector<char32_t> cps = DecodeUtf8(s);
    int64_t done = 0;
    for (char32_t cp : cps) {
      if (done < count) {
        absl::StrAppend(&out, repl);
        ++done;
      }
      AppendUtf8(cp, out);
    }
    if (done < count) absl::StrAppend(&out, repl);
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (done < count) {
    const size_t at = s.find(old, pos);
    if (at == absl::string_view::npos) break;
    absl::StrAppend(&out, s.substr(pos, at - pos));
    absl::StrAppend(&out, repl);
    pos = at + old.size();
    ++done;
  }
  absl::StrAppend(&out, s.substr(pos));
  return out;
}

int64_t PyFind(absl::string_view s, absl::string_view sub, bool from_right) {
  const size_t at = from_right ? s.rfind(sub) : s.find(sub);
  if (at == absl::string_view::npos) return -1;
  return CodePointCount(s.substr(0, at));
}

int64_t PyCount(absl::string_view s, absl::string_view sub) {
  if (sub.empty()) return CodePointCount(s) + 1;
  int64_t n = 0;
  for (size_t pos = s.find(sub); pos != absl::string_view::npos;
       pos = s.find(sub, pos + sub.size())) {
    ++n;
  }
  return n;
}

namespace {
bool IsCased(char32_t cp) { return PyUpperChar(cp) != cp || PyLowerChar(cp) != cp; }
}  // namespace

std::string PyTitle(absl::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (char32_t cp : DecodeUtf8(s)) {
    AppendUtf8(prev_cased ? PyLowerChar(cp) : PyUpperChar(cp), out);
    prev_cased = IsCased(cp);
  }
  return out;
}

std::string PyCapitalize(absl::string_view s) {
  std::string out;
  bool first = true;
  for (char32_t cp : DecodeUtf8(s)) {
    AppendUtf8(first ? PyUpperChar(cp) : PyLowerChar(cp), out);
    first = false;
  }
  return out;
}

absl::StatusOr<std::string> PyStrFormat(absl::string_view fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  size_t i = 0;
  while (i < fmt.size()) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        i += 2;
        continue;
      }
      return absl::InvalidArgumentError("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      i += 2;
      continue;
    }
    const size_t close = fmt.find('}', i);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("Single '{' encountered in format string");
    }
    absl::string_view field = fmt.substr(i + 1, close - i - 1);
    i = close + 1;
    if (field.find(':') != absl::string_view::npos || field.find('!') != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          "format specs and conversions in str.format are not supported");
    }
    const size_t sub = std::min(field.find('.'), field.find('['));
    absl::string_view head = field.substr(0, sub);
    Value v;
    if (head.empty() ||
        std::all_of(head.begin(), head.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      size_t index = 0;
      if (head.empty()) {
        index = auto_index++;
      } else if (!absl::SimpleAtoi(head, &index)) {
        return absl::InvalidArgumentError("format field index too large");
      }
      if (index >= args.args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("Replacement index ", index, " out of range for positional args tuple"));
      }
      v = args.args[index];
    } else {
      bool found = false;
      for (const auto& [k, val] : args.kwargs) {
        if (k == head) {
          v = val;
          found = true;
        }
      }
      if (!found) return absl::InvalidArgumentError(absl::StrCat("KeyError: '", head, "'"));
    }
    // .attr and [key] lookups after the head.
    absl::string_view rest =
        sub == absl::string_view::npos ? absl::string_view() : field.substr(sub);
    while (!rest.empty()) {
      if (rest[0] == '.') {
        const size_t end = std::min(rest.find('.', 1), rest.find('[', 1));
        auto next = GetAttribute(v, rest.substr(1, end == absl::string_view::npos ? end : end - 1));
        if (!next.ok()) return next.status();
        v = *next;
        rest = end == absl::string_view::npos ? absl::string_view() : rest.substr(end);
      } else {
        const size_t end = rest.find(']');
        if (end == absl::string_view::npos)
          return absl::InvalidArgumentError("Missing ']' in format string");
        std::string key(rest.substr(1, end - 1));
        int64_t index = 0;
        Value k = absl::SimpleAtoi(key, &index) && key[0] != '-' && key[0] != '+'
                      ? Value::Int(index)
                      : Value::String(key);
        auto next = GetItem(v, k);
        if (!next.ok()) return next.status();
        v = *next;
        rest = rest.substr(end + 1);
      }
    }
    if (out.size() > kMaxFormattedBytes) return TooLong();
    out += v.Str();
  }
  return out;
}

absl::StatusOr<Value> PercentFormat(const std::string& fmt, const Value& args) {
  std::vector<Value> values;
  if (args.is_tuple()) {
    values = args.items();
  } else {
    values.push_back(args);
  }
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) return absl::InvalidArgumentError("incomplete format");
    const char conv = fmt[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) {
      return absl::InvalidArgumentError("not enough arguments for format string");
    }
    if (out.size() > kMaxFormattedBytes) return TooLong();
    const Value& v = values[next++];
    switch (conv) {
      case 's':
        out += v.Str();
        break;
      case 'r':
        out += v.Repr();
        break;
      case 'd':
      case 'i':
        if (v.is_integral()) {
          out += std::to_string(v.integral());
        } else if (v.is_float()) {
          out += std::to_string(static_cast<int64_t>(v.float_value()));
        } else {
          return absl::InvalidArgumentError(absl::StrCat(
              "%", std::string(1, conv), " format: a real number is required, not ", v.TypeName()));
        }
        break;
      case 'f':
        if (!v.is_number()) {
          return absl::InvalidArgumentError(
              absl::StrCat("must be real number, not ", v.TypeName()));
        } else {
          char buf[64];
          std::snprintf(buf, sizeof(buf), "%f", v.as_double());
          out += buf;
        }
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unsupported format character '", std::string(1, conv), "'"));
    }
  }
  if (next < values.size()) {
    return absl::InvalidArgumentError("not all arguments converted during string formatting");
  }
  return Value::String(std::move(out));
}

}  // namespace tessera::jinja
