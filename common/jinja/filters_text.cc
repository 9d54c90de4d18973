// Jinja2's text filters: trim, upper, lower, capitalize, title, replace,
// string, safe, escape, indent, wordcount, tojson, int, float, abs, round,
// default, format, center.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/args.h"
#include "common/jinja/builtins.h"
#include "common/jinja/interpreter.h"
#include "common/jinja/json.h"
#include "common/jinja/operators.h"
#include "common/jinja/str_ops.h"
#include "common/jinja/unicode.h"
#include "common/status_macros.h"

namespace tessera::jinja {
namespace {

using Result = absl::StatusOr<Value>;
Value Str(std::string s) { return Value::String(std::move(s)); }

Result NoArgs(const CallArgs& args, absl::string_view name) {
  RETURN_IF_ERROR(BindArgs(name, args, {}).status());
  return Value();
}

Result trim(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("trim", args, {{"chars", Value::None()}}));
  if (!a[0].is_none() && !a[0].is_string())
    return absl::InvalidArgumentError("strip arg must be None or str");
  return Str(std::string(PyStrip(v.Str(), a[0].is_string() ? &a[0].str() : nullptr, true, true)));
}
Result upper(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "upper").status());
  return Str(PyUpper(v.Str()));
}
Result lower(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "lower").status());
  return Str(PyLower(v.Str()));
}
Result capitalize(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "capitalize").status());
  return Str(PyCapitalize(v.Str()));
}
// Jinja's title: each run after [-\s({\[<]+ starts upper, the rest lower.
Result title(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "title").status());
  std::string out;
  bool word_start = true;
  for (char32_t cp : DecodeUtf8(v.Str())) {
    const bool sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || IsPySpace(cp);
    AppendUtf8(sep ? cp : word_start ? PyUpperChar(cp) : PyLowerChar(cp), out);
    word_start = sep;
  }
  return Str(std::move(out));
}
Result replace(Renderer& r, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(
      auto a, BindArgs("replace", args,
                       {{"old", std::nullopt}, {"new", std::nullopt}, {"count", Value::None()}}));
  int64_t count = -1;
  if (!a[2].is_none()) {
    ASSIGN_OR_RETURN(count, IntArg(a[2], "count"));
  }
  std::string out = PyReplace(v.Str(), a[0].Str(), a[1].Str(), count);
  RETURN_IF_ERROR(r.ChargeString(out.size()));
  return Str(std::move(out));
}
Result string(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "string").status());
  return v.is_string() ? v : Str(v.Str());
}
Result escape(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "escape").status());
  std::string out;
  for (char c : v.Str()) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return Str(std::move(out));
}
Result indent(Renderer& r, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("indent", args,
                                    {{"width", Value::Int(4)},
                                     {"first", Value::Bool(false)},
                                     {"blank", Value::Bool(false)}}));
  std::string pad;
  if (a[0].is_string()) {
    pad = a[0].str();
  } else {
    ASSIGN_OR_RETURN(int64_t width, IntArg(a[0], "width"));
    if (width > (1 << 20)) return absl::InvalidArgumentError("indent width too large");
    pad.assign(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
  }
  std::vector<std::string> lines = PySplitLines(v.Str() + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += '\n';
      if (a[2].Truthy() || !lines[i].empty()) out += pad;
    }
    out += lines[i];
    RETURN_IF_ERROR(r.Charge(lines[i].size() + pad.size()));
  }
  if (a[1].Truthy()) out = pad + out;
  return Str(std::move(out));
}
Result wordcount(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "wordcount").status());
  int64_t n = 0;
  bool in_word = false;
  for (char32_t cp : DecodeUtf8(v.Str())) {
    const bool w = IsPyWordChar(cp);
    n += w && !in_word;
    in_word = w;
  }
  return Value::Int(n);
}
Result tojson(Renderer& r, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("tojson", args,
                                    {{"ensure_ascii", Value::Bool(false)},
                                     {"indent", Value::None()},
                                     {"separators", Value::None()},
                                     {"sort_keys", Value::Bool(false)}}));
  JsonDumpOptions o;
  o.ensure_ascii = a[0].Truthy();
  if (a[1].is_string()) {
    o.indent = a[1].str();
  } else if (!a[1].is_none()) {
    ASSIGN_OR_RETURN(int64_t width, IntArg(a[1], "indent"));
    if (width > 1024) return absl::InvalidArgumentError("tojson indent too large");
    o.indent = std::string(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
  }
  if (!a[2].is_none()) {
    if (!a[2].is_list() || a[2].items().size() != 2 || !a[2].items()[0].is_string() ||
        !a[2].items()[1].is_string()) {
      return absl::InvalidArgumentError("tojson separators must be a pair of strings");
    }
    o.item_separator = a[2].items()[0].str();
    o.key_separator = a[2].items()[1].str();
  }
  o.sort_keys = a[3].Truthy();
  ASSIGN_OR_RETURN(std::string out, PyJsonDumps(v, o));
  RETURN_IF_ERROR(r.ChargeString(out.size()));
  return Str(std::move(out));
}

// Python int(str, base) / float(str) literal syntax: surrounding whitespace,
// sign, underscores between digits.
std::optional<int64_t> ParsePyInt(absl::string_view s, int base) {
  s = PyStrip(s, nullptr, true, true);
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && s[i - 1] != '_' && s[i + 1] != '_') continue;
    clean += s[i];
  }
  if (clean.empty() || clean.find_first_of(" \t\n.") != std::string::npos) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(clean.c_str(), &end, base);
  if (errno != 0 || end != clean.c_str() + clean.size()) return std::nullopt;
  return v;
}
std::optional<double> ParsePyFloat(absl::string_view s) {
  s = PyStrip(s, nullptr, true, true);
  std::string clean(s);
  clean.erase(std::remove(clean.begin(), clean.end(), '_'), clean.end());
  if (clean.empty() || clean.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return d;
}

Result int_filter(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a,
                   BindArgs("int", args, {{"default", Value::Int(0)}, {"base", Value::Int(10)}}));
  if (v.is_integral()) return Value::Int(v.integral());
  if (v.is_float()) {
    if (!std::isfinite(v.float_value()) || std::fabs(v.float_value()) >= 9.2e18) {
      return absl::InvalidArgumentError("cannot convert float to a 64-bit integer");
    }
    return Value::Int(static_cast<int64_t>(v.float_value()));
  }
  if (v.is_string()) {
    ASSIGN_OR_RETURN(int64_t base, IntArg(a[1], "base"));
    if (base < 2 || base > 36) base = 10;
    if (auto i = ParsePyInt(v.str(), static_cast<int>(base))) return Value::Int(*i);
    if (auto d = ParsePyFloat(v.str()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18) {
      return Value::Int(static_cast<int64_t>(*d));
    }
  }
  return a[0];
}
Result float_filter(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("float", args, {{"default", Value::Float(0.0)}}));
  if (v.is_number()) return Value::Float(v.as_double());
  if (v.is_string()) {
    if (auto d = ParsePyFloat(v.str())) return Value::Float(*d);
  }
  return a[0];
}
Result abs_filter(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "abs").status());
  if (v.is_float()) return Value::Float(std::fabs(v.float_value()));
  if (v.is_integral()) return UnaryOperation(v, v.integral() < 0);
  return absl::InvalidArgumentError(
      absl::StrCat("bad operand type for abs(): '", v.TypeName(), "'"));
}
Result round_filter(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(
      auto a,
      BindArgs("round", args, {{"precision", Value::Int(0)}, {"method", Value::String("common")}}));
  ASSIGN_OR_RETURN(int64_t precision, IntArg(a[0], "precision"));
  const std::string method = a[1].Str();
  if (method != "common" && method != "ceil" && method != "floor") {
    return absl::InvalidArgumentError("method must be common, ceil or floor");
  }
  if (!v.is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat("type ", v.TypeName(), " doesn't define __round__ method"));
  }
  if (method == "common") {
    if (v.is_integral()) return Value::Int(v.integral());
    if (!std::isfinite(v.float_value()) || precision < 0 || precision > 300) {
      return Value::Float(v.float_value());
    }
    char buf[512];  // correctly rounded (half to even on the exact value), as Python's round()
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), v.float_value());
    return Value::Float(std::strtod(buf, nullptr));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_double() * scale;
  return Value::Float((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}
Result default_filter(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(
      auto a, BindArgs("default", args,
                       {{"default_value", Value::String("")}, {"boolean", Value::Bool(false)}}));
  if (v.is_undefined() || (a[1].Truthy() && !v.Truthy())) return a[0];
  return v;
}
Result format(Renderer&, const Value& v, const CallArgs& args) {
  if (!args.kwargs.empty())
    return absl::InvalidArgumentError("format with keyword arguments is not supported");
  return PercentFormat(v.Str(), Value::List(args.args, true));
}
Result center(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("center", args, {{"width", Value::Int(80)}}));
  ASSIGN_OR_RETURN(int64_t width, IntArg(a[0], "width"));
  std::string s = v.Str();
  const int64_t n = CodePointCount(s);
  if (width <= n || width > (1 << 20)) return Str(std::move(s));
  const int64_t total = width - n;
  const int64_t left = total / 2 + (total & width & 1);
  return Str(std::string(static_cast<size_t>(left), ' ') + s +
             std::string(static_cast<size_t>(total - left), ' '));
}

struct Entry {
  absl::string_view name;
  FilterFn fn;
};
constexpr Entry kFilters[] = {
    {"trim", trim},
    {"upper", upper},
    {"lower", lower},
    {"capitalize", capitalize},
    {"title", title},
    {"replace", replace},
    {"string", string},
    {"safe", string},
    {"e", escape},
    {"escape", escape},
    {"forceescape", escape},
    {"indent", indent},
    {"wordcount", wordcount},
    {"tojson", tojson},
    {"int", int_filter},
    {"float", float_filter},
    {"abs", abs_filter},
    {"round", round_filter},
    {"default", default_filter},
    {"d", default_filter},
    {"format", format},
    {"center", center},
};

}  // namespace

FilterFn FindTextFilter(absl::string_view name) {
  for (const Entry& e : kFilters) {
    if (e.name == name) return e.fn;
  }
  return nullptr;
}

}  // namespace tessera::jinja
