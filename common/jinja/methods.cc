#include "common/jinja/methods.h"

#include <algorithm>
#include <array>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/access.h"
#include "common/jinja/args.h"
#include "common/jinja/objects.h"
#include "common/jinja/str_ops.h"
#include "common/jinja/unicode.h"

namespace tessera::jinja {
namespace {

using Result = absl::StatusOr<Value>;

Value Str(std::string s) { return Value::String(std::move(s)); }

// Python's str/dict/list methods mostly take positional-only arguments.
absl::StatusOr<std::vector<Value>> BindPositional(const Value& self, absl::string_view fn,
                                                  const CallArgs& args,
                                                  std::initializer_list<Param> params) {
  if (!args.kwargs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(self.TypeName(), ".", fn, "() takes no keyword arguments"));
  }
  return BindArgs(fn, args, params);
}

Result Strip(const Value& self, const CallArgs& args, const char* fn, bool l, bool r) {
  auto a = BindPositional(self, fn, args, {{"chars", Value::None()}});
  if (!a.ok()) return a.status();
  const Value& chars = (*a)[0];
  if (!chars.is_none() && !chars.is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(fn, " arg must be None or str"));
  }
  const std::string* set = chars.is_string() ? &chars.str() : nullptr;
  return Str(std::string(PyStrip(self.str(), set, l, r)));
}

Result Split(const Value& self, const CallArgs& args, const char* fn, bool from_right) {
  auto a = BindArgs(fn, args, {{"sep", Value::None()}, {"maxsplit", Value::Int(-1)}});
  if (!a.ok()) return a.status();
  std::optional<std::string> sep;
  if (!(*a)[0].is_none()) {
    auto s = StrArg((*a)[0], "sep");
    if (!s.ok()) return s.status();
    sep = *s;
  }
  auto maxsplit = IntArg((*a)[1], "maxsplit");
  if (!maxsplit.ok()) return maxsplit.status();
  auto parts = PySplit(self.str(), sep, *maxsplit, from_right);
  if (!parts.ok()) return parts.status();
  std::vector<Value> out;
  for (auto& p : *parts) out.push_back(Str(std::move(p)));
  return Value::List(std::move(out));
}

Result Affix(const Value& self, const CallArgs& args, const char* fn, bool prefix) {
  auto a = BindPositional(self, fn, args, {{"affix", std::nullopt}});
  if (!a.ok()) return a.status();
  const Value& arg = (*a)[0];
  std::vector<Value> options = arg.is_tuple() ? arg.items() : std::vector<Value>{arg};
  const std::string& s = self.str();
  for (const Value& o : options) {
    if (!o.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(fn, " first arg must be str or a tuple of str, not ", o.TypeName()));
    }
    const std::string& x = o.str();
    if (x.size() <= s.size() && (prefix ? s.compare(0, x.size(), x) == 0
                                        : s.compare(s.size() - x.size(), x.size(), x) == 0)) {
      return Value::Bool(true);
    }
  }
  return Value::Bool(false);
}

Result OneStrArg(const Value& self, const CallArgs& args, const char* fn,
                 Result (*f)(const std::string& s, const std::string& arg)) {
  auto a = BindPositional(self, fn, args, {{"sub", std::nullopt}});
  if (!a.ok()) return a.status();
  auto sub = StrArg((*a)[0], "substring");
  if (!sub.ok()) return sub.status();
  return f(self.str(), *sub);
}

Result NoArgs(const CallArgs& args, const char* fn) {
  if (!args.args.empty() || !args.kwargs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(fn, "() takes no arguments"));
  }
  return Value();
}

#define TESSERA_NOARG_STR_METHOD(NAME, EXPR)                         \
  Result NAME(const Value& self, CallArgs& args, Renderer&) {        \
    if (auto st = NoArgs(args, #NAME); !st.ok()) return st.status(); \
    const std::string& s = self.str();                               \
    return EXPR;                                                     \
  }

TESSERA_NOARG_STR_METHOD(upper, Str(PyUpper(s)))
TESSERA_NOARG_STR_METHOD(lower, Str(PyLower(s)))
TESSERA_NOARG_STR_METHOD(title, Str(PyTitle(s)))
TESSERA_NOARG_STR_METHOD(capitalize, Str(PyCapitalize(s)))
TESSERA_NOARG_STR_METHOD(isupper, Value::Bool(PyIsUpper(s)))
TESSERA_NOARG_STR_METHOD(islower, Value::Bool(PyIsLower(s)))
TESSERA_NOARG_STR_METHOD(isspace,
                         Value::Bool(!s.empty() && PyStrip(s, nullptr, true, false).empty()))
TESSERA_NOARG_STR_METHOD(isdigit,
                         Value::Bool(!s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
                           return c >= '0' && c <= '9';
                         })))
TESSERA_NOARG_STR_METHOD(isalpha,
                         Value::Bool(!s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
                           return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
                         })))
TESSERA_NOARG_STR_METHOD(isalnum,
                         Value::Bool(!s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
                           return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
                                  (c >= '0' && c <= '9');
                         })))
#undef TESSERA_NOARG_STR_METHOD

Result splitlines(const Value& self, CallArgs& args, Renderer&) {
  if (auto st = NoArgs(args, "splitlines"); !st.ok()) return st.status();
  std::vector<Value> out;
  for (auto& line : PySplitLines(self.str())) out.push_back(Str(std::move(line)));
  return Value::List(std::move(out));
}
Result strip(const Value& s, CallArgs& a, Renderer&) { return Strip(s, a, "strip", true, true); }
Result lstrip(const Value& s, CallArgs& a, Renderer&) { return Strip(s, a, "lstrip", true, false); }
Result rstrip(const Value& s, CallArgs& a, Renderer&) { return Strip(s, a, "rstrip", false, true); }
Result split(const Value& s, CallArgs& a, Renderer&) { return Split(s, a, "split", false); }
Result rsplit(const Value& s, CallArgs& a, Renderer&) { return Split(s, a, "rsplit", true); }
Result startswith(const Value& s, CallArgs& a, Renderer&) {
  return Affix(s, a, "startswith", true);
}
Result endswith(const Value& s, CallArgs& a, Renderer&) { return Affix(s, a, "endswith", false); }
Result find(const Value& s, CallArgs& a, Renderer&) {
  return OneStrArg(s, a, "find", [](const std::string& x, const std::string& y) -> Result {
    return Value::Int(PyFind(x, y, false));
  });
}
Result rfind(const Value& s, CallArgs& a, Renderer&) {
  return OneStrArg(s, a, "rfind", [](const std::string& x, const std::string& y) -> Result {
    return Value::Int(PyFind(x, y, true));
  });
}
Result str_count(const Value& s, CallArgs& a, Renderer&) {
  return OneStrArg(s, a, "count", [](const std::string& x, const std::string& y) -> Result {
    return Value::Int(PyCount(x, y));
  });
}
Result replace(const Value& self, CallArgs& args, Renderer& r);
Result format(const Value& self, CallArgs& args, Renderer&) {
  auto out = PyStrFormat(self.str(), args);
  if (!out.ok()) return out.status();
  return Str(*std::move(out));
}
Result join(const Value& self, CallArgs& args, Renderer& r);

// dict methods.
Result get(const Value& self, CallArgs& args, Renderer&) {
  auto a = BindPositional(self, "get", args, {{"key", std::nullopt}, {"default", Value::None()}});
  if (!a.ok()) return a.status();
  const Value* v = self.dict().Find((*a)[0]);
  return v != nullptr ? *v : (*a)[1];
}
Result items(const Value& self, CallArgs& args, Renderer&) {
  if (auto st = NoArgs(args, "items"); !st.ok()) return st.status();
  std::vector<Value> out;
  for (const auto& [k, v] : self.dict().entries()) out.push_back(Value::List({k, v}, true));
  return Value::Iterator(std::move(out), "dict_items", /*view=*/true);
}
Result keys(const Value& self, CallArgs& args, Renderer&) {
  if (auto st = NoArgs(args, "keys"); !st.ok()) return st.status();
  std::vector<Value> out;
  for (const auto& entry : self.dict().entries()) out.push_back(entry.first);
  return Value::Iterator(std::move(out), "dict_keys", /*view=*/true);
}
Result values(const Value& self, CallArgs& args, Renderer&) {
  if (auto st = NoArgs(args, "values"); !st.ok()) return st.status();
  std::vector<Value> out;
  for (const auto& entry : self.dict().entries()) out.push_back(entry.second);
  return Value::Iterator(std::move(out), "dict_values", /*view=*/true);
}
Result copy(const Value& self, CallArgs& args, Renderer&) {
  if (auto st = NoArgs(args, "copy"); !st.ok()) return st.status();
  return self;
}

// list/tuple methods.
Result index(const Value& self, CallArgs& args, Renderer&) {
  auto a = BindPositional(self, "index", args, {{"value", std::nullopt}});
  if (!a.ok()) return a.status();
  const auto& v = self.items();
  for (size_t i = 0; i < v.size(); ++i) {
    if (PyEquals(v[i], (*a)[0])) return Value::Int(static_cast<int64_t>(i));
  }
  return absl::InvalidArgumentError(absl::StrCat((*a)[0].Repr(), " is not in list"));
}
Result list_count(const Value& self, CallArgs& args, Renderer&) {
  auto a = BindPositional(self, "count", args, {{"value", std::nullopt}});
  if (!a.ok()) return a.status();
  int64_t n = 0;
  for (const Value& v : self.items()) n += PyEquals(v, (*a)[0]);
  return Value::Int(n);
}

struct Entry {
  absl::string_view name;
  MethodFn fn;  // null: exists but is unsafe (mutates) in the sandbox
};

constexpr std::array kStrMethods = {
    Entry{"upper", upper},           Entry{"lower", lower},
    Entry{"title", title},           Entry{"capitalize", capitalize},
    Entry{"strip", strip},           Entry{"lstrip", lstrip},
    Entry{"rstrip", rstrip},         Entry{"split", split},
    Entry{"rsplit", rsplit},         Entry{"splitlines", splitlines},
    Entry{"startswith", startswith}, Entry{"endswith", endswith},
    Entry{"replace", replace},       Entry{"find", find},
    Entry{"rfind", rfind},           Entry{"count", str_count},
    Entry{"format", format},         Entry{"join", join},
    Entry{"isupper", isupper},       Entry{"islower", islower},
    Entry{"isspace", isspace},       Entry{"isdigit", isdigit},
    Entry{"isalpha", isalpha},       Entry{"isalnum", isalnum},
};
constexpr std::array kDictMethods = {
    Entry{"get", get},         Entry{"items", items},        Entry{"keys", keys},
    Entry{"values", values},   Entry{"copy", copy},          Entry{"pop", nullptr},
    Entry{"popitem", nullptr}, Entry{"setdefault", nullptr}, Entry{"update", nullptr},
    Entry{"clear", nullptr},
};
constexpr std::array kListMethods = {
    Entry{"index", index},    Entry{"count", list_count}, Entry{"copy", copy},
    Entry{"append", nullptr}, Entry{"extend", nullptr},   Entry{"insert", nullptr},
    Entry{"pop", nullptr},    Entry{"remove", nullptr},   Entry{"reverse", nullptr},
    Entry{"sort", nullptr},   Entry{"clear", nullptr},
};
constexpr std::array kTupleMethods = {Entry{"index", index}, Entry{"count", list_count}};

template <size_t N>
std::optional<Value> Lookup(const std::array<Entry, N>& table, const Value& self,
                            absl::string_view name) {
  for (const Entry& e : table) {
    if (e.name != name) continue;
    if (e.fn == nullptr) {
      UndefinedInfo info;
      info.hint = absl::StrCat("access to attribute '", name, "' of '", self.TypeName(),
                               "' object is unsafe.");
      return Value::Undefined(std::move(info));
    }
    return Value::FromObject(std::make_shared<BoundMethod>(self, std::string(name), e.fn));
  }
  return std::nullopt;
}

Result replace(const Value& self, CallArgs& args, Renderer&) {
  auto a =
      BindPositional(self, "replace", args,
                     {{"old", std::nullopt}, {"new", std::nullopt}, {"count", Value::Int(-1)}});
  if (!a.ok()) return a.status();
  auto old = StrArg((*a)[0], "replace() argument 1");
  auto repl = StrArg((*a)[1], "replace() argument 2");
  auto count = IntArg((*a)[2], "count");
  if (!old.ok()) return old.status();
  if (!repl.ok()) return repl.status();
  if (!count.ok()) return count.status();
  return Str(PyReplace(self.str(), *old, *repl, *count));
}

Result join(const Value& self, CallArgs& args, Renderer&) {
  auto a = BindPositional(self, "join", args, {{"iterable", std::nullopt}});
  if (!a.ok()) return a.status();
  auto parts_or = Iterate((*a)[0]);
  if (!parts_or.ok()) return absl::InvalidArgumentError("can only join an iterable");
  const std::vector<Value>& parts = *parts_or;
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!parts[i].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence item ", i, ": expected str instance, ", parts[i].TypeName(), " found"));
    }
    if (i > 0) out += self.str();
    out += parts[i].str();
  }
  return Str(std::move(out));
}

}  // namespace

std::optional<Value> FindMethod(const Value& self, absl::string_view name) {
  switch (self.kind()) {
    case Value::Kind::kString:
      return Lookup(kStrMethods, self, name);
    case Value::Kind::kDict:
      return Lookup(kDictMethods, self, name);
    case Value::Kind::kList:
      return self.is_tuple() ? Lookup(kTupleMethods, self, name) : Lookup(kListMethods, self, name);
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kObject:
    case Value::Kind::kIterator:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace tessera::jinja
