// Jinja2's sequence filters: length/count, first, last, list, items, join,
// map, select/reject, selectattr/rejectattr, unique, sort, reverse, dictsort,
// sum, min, max, batch, attr. Filters Jinja2 implements as generators (map,
// select, unique, ...) return lists here.
#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/jinja/access.h"
#include "common/jinja/args.h"
#include "common/jinja/builtins.h"
#include "common/jinja/interpreter.h"
#include "common/jinja/operators.h"
#include "common/jinja/unicode.h"
#include "common/status_macros.h"

namespace tessera::jinja {

absl::StatusOr<Value> GetAttrPath(const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return GetItem(item, attribute);
  Value v = item;
  for (absl::string_view part : absl::StrSplit(attribute.str(), '.')) {
    int64_t index = 0;
    Value key = absl::SimpleAtoi(part, &index) && !part.empty() && part[0] != '-' && part[0] != '+'
                    ? Value::Int(index)
                    : Value::String(std::string(part));
    ASSIGN_OR_RETURN(v, GetItem(v, key));
  }
  return v;
}

namespace {

using Result = absl::StatusOr<Value>;

Value EmptyUndefined(std::string hint) {
  UndefinedInfo info;
  info.hint = std::move(hint);
  return Value::Undefined(std::move(info));
}

Result length(Renderer&, const Value& v, const CallArgs& args) {
  RETURN_IF_ERROR(BindArgs("length", args, {}).status());
  ASSIGN_OR_RETURN(int64_t n, Length(v));
  return Value::Int(n);
}
Result first(Renderer&, const Value& v, const CallArgs& args) {
  RETURN_IF_ERROR(BindArgs("first", args, {}).status());
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  if (items.empty()) return EmptyUndefined("No first item, sequence was empty.");
  return items.front();
}
Result last(Renderer&, const Value& v, const CallArgs& args) {
  RETURN_IF_ERROR(BindArgs("last", args, {}).status());
  if ((!v.is_list() && !v.is_string() && !v.is_dict() && !v.is_undefined() && !v.is_iterator()) ||
      (v.is_iterator() && !v.iterator().view)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", v.TypeName(), "' object is not reversible"));
  }
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  if (items.empty()) return EmptyUndefined("No last item, sequence was empty.");
  return items.back();
}
Result list(Renderer&, const Value& v, const CallArgs& args) {
  RETURN_IF_ERROR(BindArgs("list", args, {}).status());
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  return Value::List(std::move(items));
}
Result items(Renderer&, const Value& v, const CallArgs& args) {
  RETURN_IF_ERROR(BindArgs("items", args, {}).status());
  if (v.is_undefined()) return Value::Iterator({}, "generator");
  if (!v.is_dict()) return absl::InvalidArgumentError("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, val] : v.dict().entries()) out.push_back(Value::List({k, val}, true));
  return Value::Iterator(std::move(out), "generator");
}
Result join(Renderer& r, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(
      auto a, BindArgs("join", args, {{"d", Value::String("")}, {"attribute", Value::None()}}));
  ASSIGN_OR_RETURN(std::vector<Value> parts, Iterate(v));
  const std::string sep = a[0].Str();
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    if (a[1].is_none()) {
      out += parts[i].Str();
    } else {
      ASSIGN_OR_RETURN(Value x, GetAttrPath(parts[i], a[1]));
      out += x.Str();
    }
    RETURN_IF_ERROR(r.CheckSize(out.size()));
  }
  RETURN_IF_ERROR(r.ChargeString(out.size()));
  return Value::String(std::move(out));
}

Result map(Renderer& r, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(std::vector<Value> seq, Iterate(v));
  std::vector<Value> out;
  if (args.args.empty()) {
    Value attribute;
    Value def = Value::None();
    for (const auto& [k, val] : args.kwargs) {
      if (k == "attribute") {
        attribute = val;
      } else if (k == "default") {
        def = val;
      } else {
        return absl::InvalidArgumentError(absl::StrCat("Unexpected keyword argument '", k, "'"));
      }
    }
    if (attribute.is_undefined())
      return absl::InvalidArgumentError("map requires a filter argument");
    for (const Value& item : seq) {
      RETURN_IF_ERROR(r.Step());
      ASSIGN_OR_RETURN(Value x, GetAttrPath(item, attribute));
      out.push_back(x.is_undefined() && !def.is_none() ? def : x);
    }
    return Value::Iterator(std::move(out), "generator");
  }
  ASSIGN_OR_RETURN(std::string name, StrArg(args.args[0], "map filter name"));
  CallArgs rest;
  rest.args.assign(args.args.begin() + 1, args.args.end());
  rest.kwargs = args.kwargs;
  for (const Value& item : seq) {
    RETURN_IF_ERROR(r.Step());
    ASSIGN_OR_RETURN(Value x, r.CallFilter(name, item, rest));
    out.push_back(std::move(x));
  }
  return Value::Iterator(std::move(out), "generator");
}

// select/reject/selectattr/rejectattr.
Result SelectOrReject(Renderer& r, const Value& v, const CallArgs& args, bool select, bool attr) {
  ASSIGN_OR_RETURN(std::vector<Value> seq, Iterate(v));
  size_t next = 0;
  Value attribute;
  if (attr) {
    if (args.args.empty())
      return absl::InvalidArgumentError("Missing parameter for attribute name");
    attribute = args.args[next++];
  }
  std::string test;
  if (next < args.args.size()) {
    ASSIGN_OR_RETURN(test, StrArg(args.args[next++], "test name"));
  }
  CallArgs rest;
  rest.args.assign(args.args.begin() + static_cast<ptrdiff_t>(std::min(next, args.args.size())),
                   args.args.end());
  rest.kwargs = args.kwargs;
  std::vector<Value> out;
  for (const Value& item : seq) {
    RETURN_IF_ERROR(r.Step());
    Value subject = item;
    if (attr) {
      ASSIGN_OR_RETURN(subject, GetAttrPath(item, attribute));
    }
    bool keep;
    if (test.empty()) {
      keep = subject.Truthy();
    } else {
      ASSIGN_OR_RETURN(keep, r.CallTest(test, subject, rest));
    }
    if (keep == select) out.push_back(item);
  }
  return Value::Iterator(std::move(out), "generator");
}
Result select(Renderer& r, const Value& v, const CallArgs& a) {
  return SelectOrReject(r, v, a, true, false);
}
Result reject(Renderer& r, const Value& v, const CallArgs& a) {
  return SelectOrReject(r, v, a, false, false);
}
Result selectattr(Renderer& r, const Value& v, const CallArgs& a) {
  return SelectOrReject(r, v, a, true, true);
}
Result rejectattr(Renderer& r, const Value& v, const CallArgs& a) {
  return SelectOrReject(r, v, a, false, true);
}

// Sort key: the attribute (if any), lower-cased when a string and not case-sensitive.
absl::StatusOr<Value> SortKey(const Value& item, const Value& attribute, bool case_sensitive) {
  Value key = item;
  if (!attribute.is_none()) {
    ASSIGN_OR_RETURN(key, GetAttrPath(item, attribute));
  }
  if (!case_sensitive && key.is_string()) return Value::String(PyLower(key.str()));
  return key;
}

absl::Status SortValues(std::vector<std::pair<Value, Value>>& keyed, bool reverse) {
  absl::Status error;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    if (!error.ok()) return false;
    auto less = reverse ? PyLess(b.first, a.first) : PyLess(a.first, b.first);
    if (!less.ok()) {
      error = less.status();
      return false;
    }
    return *less;
  });
  return error;
}

Result sort(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("sort", args,
                                    {{"reverse", Value::Bool(false)},
                                     {"case_sensitive", Value::Bool(false)},
                                     {"attribute", Value::None()}}));
  ASSIGN_OR_RETURN(std::vector<Value> seq, Iterate(v));
  // Jinja2 sorts by a list of keys (one per comma-separated attribute), so
  // equal keys are never ordered with `<` (e.g. [none, none]|sort works).
  std::vector<Value> attributes;
  if (a[2].is_string()) {
    for (absl::string_view part : absl::StrSplit(a[2].str(), ',')) {
      attributes.push_back(Value::String(std::string(part)));
    }
  } else {
    attributes.push_back(a[2]);
  }
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& item : seq) {
    std::vector<Value> keys;
    for (const Value& attribute : attributes) {
      ASSIGN_OR_RETURN(Value key, SortKey(item, attribute, a[1].Truthy()));
      keys.push_back(std::move(key));
    }
    keyed.emplace_back(Value::List(std::move(keys)), std::move(item));
  }
  RETURN_IF_ERROR(SortValues(keyed, a[0].Truthy()));
  std::vector<Value> out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return Value::List(std::move(out));
}
Result dictsort(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("dictsort", args,
                                    {{"case_sensitive", Value::Bool(false)},
                                     {"by", Value::String("key")},
                                     {"reverse", Value::Bool(false)}}));
  if (!v.is_dict()) return absl::InvalidArgumentError("dictsort requires a mapping");
  const std::string by = a[1].Str();
  if (by != "key" && by != "value")
    return absl::InvalidArgumentError("You can only sort by either 'key' or 'value'");
  std::vector<std::pair<Value, Value>> keyed;
  for (const auto& [k, val] : v.dict().entries()) {
    ASSIGN_OR_RETURN(Value key, SortKey(by == "key" ? k : val, Value::None(), a[0].Truthy()));
    keyed.emplace_back(std::move(key), Value::List({k, val}, true));
  }
  RETURN_IF_ERROR(SortValues(keyed, a[2].Truthy()));
  std::vector<Value> out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return Value::List(std::move(out));
}
Result unique(Renderer& r, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(
      auto a, BindArgs("unique", args,
                       {{"case_sensitive", Value::Bool(false)}, {"attribute", Value::None()}}));
  ASSIGN_OR_RETURN(std::vector<Value> seq, Iterate(v));
  std::vector<Value> seen;
  std::vector<Value> out;
  for (Value& item : seq) {
    ASSIGN_OR_RETURN(Value key, SortKey(item, a[1], a[0].Truthy()));
    bool dup = false;
    for (const Value& s : seen) {
      RETURN_IF_ERROR(r.Step());
      if (PyEquals(s, key)) {
        dup = true;
        break;
      }
    }
    if (dup) continue;
    seen.push_back(std::move(key));
    out.push_back(std::move(item));
  }
  return Value::Iterator(std::move(out), "generator");
}
Result MinMax(const Value& v, const CallArgs& args, bool max) {
  ASSIGN_OR_RETURN(
      auto a, BindArgs(max ? "max" : "min", args,
                       {{"case_sensitive", Value::Bool(false)}, {"attribute", Value::None()}}));
  ASSIGN_OR_RETURN(std::vector<Value> seq, Iterate(v));
  if (seq.empty()) return EmptyUndefined(absl::StrCat("No aggregated item, sequence was empty."));
  size_t best = 0;
  ASSIGN_OR_RETURN(Value best_key, SortKey(seq[0], a[1], a[0].Truthy()));
  for (size_t i = 1; i < seq.size(); ++i) {
    ASSIGN_OR_RETURN(Value key, SortKey(seq[i], a[1], a[0].Truthy()));
    ASSIGN_OR_RETURN(bool better, max ? PyLess(best_key, key) : PyLess(key, best_key));
    if (better) {
      best = i;
      best_key = std::move(key);
    }
  }
  return seq[best];
}
Result min(Renderer&, const Value& v, const CallArgs& a) { return MinMax(v, a, false); }
Result max(Renderer&, const Value& v, const CallArgs& a) { return MinMax(v, a, true); }
Result sum(Renderer& r, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a,
                   BindArgs("sum", args, {{"attribute", Value::None()}, {"start", Value::Int(0)}}));
  ASSIGN_OR_RETURN(std::vector<Value> seq, Iterate(v));
  Value total = a[1];
  for (const Value& item : seq) {
    Value x = item;
    if (!a[0].is_none()) {
      ASSIGN_OR_RETURN(x, GetAttrPath(item, a[0]));
    }
    ASSIGN_OR_RETURN(total, BinaryOperation(BinaryOp::kAdd, total, x, r));
  }
  return total;
}
Result reverse(Renderer&, const Value& v, const CallArgs& args) {
  RETURN_IF_ERROR(BindArgs("reverse", args, {}).status());
  if (v.is_string()) {
    std::vector<char32_t> cps = DecodeUtf8(v.str());
    std::reverse(cps.begin(), cps.end());
    return Value::String(EncodeUtf8(cps));
  }
  ASSIGN_OR_RETURN(std::vector<Value> seq, Iterate(v));
  std::reverse(seq.begin(), seq.end());
  // Python's reversed() where the type supports it, else a reversed list.
  if (v.is_list()) {
    return Value::Iterator(std::move(seq), v.is_tuple() ? "reversed" : "list_reverseiterator");
  }
  if (v.is_dict()) return Value::Iterator(std::move(seq), "dict_reversekeyiterator");
  if (v.is_undefined()) return Value::Iterator(std::move(seq), "reversed");
  return Value::List(std::move(seq));
}
Result batch(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(
      auto a, BindArgs("batch", args, {{"linecount", std::nullopt}, {"fill_with", Value::None()}}));
  ASSIGN_OR_RETURN(int64_t n, IntArg(a[0], "linecount"));
  if (n <= 0) return absl::InvalidArgumentError("batch linecount must be positive");
  ASSIGN_OR_RETURN(std::vector<Value> seq, Iterate(v));
  std::vector<Value> out;
  std::vector<Value> cur;
  for (Value& item : seq) {
    cur.push_back(std::move(item));
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(Value::List(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (!a[1].is_none()) {
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(a[1]);
    }
    out.push_back(Value::List(std::move(cur)));
  }
  return Value::Iterator(std::move(out), "generator");
}
Result attr(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("attr", args, {{"name", std::nullopt}}));
  ASSIGN_OR_RETURN(std::string name, StrArg(a[0], "attribute name"));
  return GetAttribute(v, name);
}

struct Entry {
  absl::string_view name;
  FilterFn fn;
};
constexpr Entry kFilters[] = {
    {"length", length},
    {"count", length},
    {"first", first},
    {"last", last},
    {"list", list},
    {"items", items},
    {"join", join},
    {"map", map},
    {"select", select},
    {"reject", reject},
    {"selectattr", selectattr},
    {"rejectattr", rejectattr},
    {"unique", unique},
    {"sort", sort},
    {"dictsort", dictsort},
    {"min", min},
    {"max", max},
    {"sum", sum},
    {"reverse", reverse},
    {"batch", batch},
    {"attr", attr},
};

}  // namespace

FilterFn FindSequenceFilter(absl::string_view name) {
  for (const Entry& e : kFilters) {
    if (e.name == name) return e.fn;
  }
  return nullptr;
}

}  // namespace tessera::jinja
