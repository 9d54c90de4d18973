#include "common/jinja/access.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/methods.h"
#include "common/jinja/unicode.h"

namespace tessera::jinja {
namespace {

Value MissingElement(const Value& owner, const Value& key) {
  UndefinedInfo info;
  info.owner = owner.ObjectTypeRepr();
  info.has_owner = true;
  if (key.is_string()) {
    info.name = key.str();
  } else {
    info.name = key.Repr();
    info.element = true;
  }
  return Value::Undefined(std::move(info));
}

Value CodePointAt(const std::string& s, int64_t index) {
  if (IsAscii(s)) return Value::String(std::string(1, s[static_cast<size_t>(index)]));
  const auto cps = DecodeUtf8(s);
  std::string out;
  AppendUtf8(cps[static_cast<size_t>(index)], out);
  return Value::String(std::move(out));
}

// Python slice.indices(): clamps start/stop for a sequence of length n.
struct SliceRange {
  int64_t start, stop, step;
};
absl::StatusOr<SliceRange> Indices(int64_t n, const Value& start, const Value& stop,
                                   const Value& step) {
  auto part = [](const Value& v) -> absl::StatusOr<std::optional<int64_t>> {
    if (v.is_undefined() || v.is_none()) return std::optional<int64_t>();
    if (!v.is_integral()) {
      return absl::InvalidArgumentError(
          "slice indices must be integers or None or have an __index__ method");
    }
    return std::optional<int64_t>(v.integral());
  };
  auto s0 = part(start);
  auto s1 = part(stop);
  auto s2 = part(step);
  if (!s0.ok()) return s0.status();
  if (!s1.ok()) return s1.status();
  if (!s2.ok()) return s2.status();
  const int64_t st = s2->value_or(1);
  if (st == 0) return absl::InvalidArgumentError("slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = st < 0 ? -1 : 0;
    } else if (x >= n) {
      x = st < 0 ? n - 1 : n;
    }
    return x;
  };
  return SliceRange{clamp(*s0, st < 0 ? n - 1 : 0), clamp(*s1, st < 0 ? -1 : n), st};
}

template <typename T, typename F>
void ForSlice(const SliceRange& r, F f) {
  if (r.step > 0) {
    for (int64_t i = r.start; i < r.stop; i += r.step) f(i);
  } else {
    for (int64_t i = r.start; i > r.stop; i += r.step) f(i);
  }
}

}  // namespace

Value MissingAttribute(const Value& owner, absl::string_view name) {
  UndefinedInfo info;
  info.owner = owner.ObjectTypeRepr();
  info.has_owner = true;
  info.name = std::string(name);
  return Value::Undefined(std::move(info));
}

absl::StatusOr<Value> GetAttribute(const Value& obj, absl::string_view name) {
  if (obj.is_undefined()) return absl::InvalidArgumentError(obj.UndefinedMessage());
  if (obj.is_object()) return obj.object().GetAttr(name);
  if (std::optional<Value> method = FindMethod(obj, name)) return *method;
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().FindString(name)) return *v;
  }
  return MissingAttribute(obj, name);
}

absl::StatusOr<Value> GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return absl::InvalidArgumentError(obj.UndefinedMessage());
  switch (obj.kind()) {
    case Value::Kind::kDict:
      if (const Value* v = obj.dict().Find(key)) return *v;
      break;
    case Value::Kind::kList:
      if (key.is_integral()) {
        const auto& items = obj.items();
        int64_t i = key.integral();
        const auto n = static_cast<int64_t>(items.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return items[static_cast<size_t>(i)];
      }
      break;
    case Value::Kind::kString:
      if (key.is_integral()) {
        int64_t i = key.integral();
        const int64_t n = CodePointCount(obj.str());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return CodePointAt(obj.str(), i);
      }
      break;
    case Value::Kind::kObject:
      if (key.is_string()) return obj.object().GetAttr(key.str());
      break;
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kIterator:
      break;
  }
  if (key.is_string()) {
    if (std::optional<Value> method = FindMethod(obj, key.str())) return *method;
  }
  return MissingElement(obj, key);
}

absl::StatusOr<Value> SliceValue(const Value& obj, const Value& start, const Value& stop,
                                 const Value& step) {
  if (obj.is_undefined()) return absl::InvalidArgumentError(obj.UndefinedMessage());
  if (obj.is_list()) {
    const auto& items = obj.items();
    auto r = Indices(static_cast<int64_t>(items.size()), start, stop, step);
    if (!r.ok()) {
      if (r.status().message() == "slice step cannot be zero") return r.status();
      return Value();  // Jinja2 turns a bad slice into Undefined
    }
    std::vector<Value> out;
    ForSlice<Value>(*r, [&](int64_t i) { out.push_back(items[static_cast<size_t>(i)]); });
    return Value::List(std::move(out), obj.is_tuple());
  }
  if (obj.is_string()) {
    const std::string& s = obj.str();
    const bool ascii = IsAscii(s);
    std::vector<char32_t> cps;
    if (!ascii) cps = DecodeUtf8(s);
    const int64_t n = ascii ? static_cast<int64_t>(s.size()) : static_cast<int64_t>(cps.size());
    auto r = Indices(n, start, stop, step);
    if (!r.ok()) {
      if (r.status().message() == "slice step cannot be zero") return r.status();
      return Value();  // Jinja2 turns a bad slice into Undefined
    }
    std::string out;
    ForSlice<char>(*r, [&](int64_t i) {
      if (ascii) {
        out += s[static_cast<size_t>(i)];
      } else {
        AppendUtf8(cps[static_cast<size_t>(i)], out);
      }
    });
    return Value::String(std::move(out));
  }
  if (obj.is_iterator()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", obj.TypeName(), "' object is not subscriptable"));
  }
  return Value();
}

absl::StatusOr<std::vector<Value>> Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return std::vector<Value>();
    case Value::Kind::kList:
      return v.items();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.dict().size());
      for (const auto& entry : v.dict().entries()) keys.push_back(entry.first);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      for (char32_t cp : DecodeUtf8(v.str())) {
        std::string c;
        AppendUtf8(cp, c);
        chars.push_back(Value::String(std::move(c)));
      }
      return chars;
    }
    case Value::Kind::kIterator: {
      const IteratorData& it = v.iterator();
      if (it.view) return it.items;
      if (it.consumed) return std::vector<Value>();
      it.consumed = true;
      return it.items;
    }
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kObject:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("'", v.TypeName(), "' object is not iterable"));
}

absl::StatusOr<int64_t> Length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return CodePointCount(v.str());
    case Value::Kind::kList:
      return static_cast<int64_t>(v.items().size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.dict().size());
    case Value::Kind::kIterator:
      if (v.iterator().view) return static_cast<int64_t>(v.iterator().items.size());
      break;
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kObject:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("object of type '", v.TypeName(), "' has no len()"));
}

}  // namespace tessera::jinja
