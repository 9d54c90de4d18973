#include "common/jinja/value.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/py_repr.h"

namespace tessera::jinja {

// A plain Undefined carries no info (no allocation); undefined_info() then
// returns a shared empty one.
Value::Value() : data_(std::shared_ptr<const UndefinedInfo>()) {}

const UndefinedInfo* Value::undefined_info() const {
  static const UndefinedInfo* const kEmpty = new UndefinedInfo();
  const auto& info = std::get<std::shared_ptr<const UndefinedInfo>>(data_);
  return info != nullptr ? info.get() : kEmpty;
}

Value Value::Undefined(UndefinedInfo info) {
  return Value(Data(std::make_shared<const UndefinedInfo>(std::move(info))));
}
Value Value::UndefinedName(std::string name) {
  UndefinedInfo info;
  info.name = std::move(name);
  return Undefined(std::move(info));
}
Value Value::None() { return Value(Data(NoneTag{})); }
Value Value::Bool(bool b) { return Value(Data(b)); }
Value Value::Int(int64_t i) { return Value(Data(i)); }
Value Value::Float(double d) { return Value(Data(d)); }
Value Value::String(std::string s) {
  return Value(Data(std::make_shared<const std::string>(std::move(s))));
}
Value Value::StringShared(std::shared_ptr<const std::string> s) {
  return Value(Data(std::move(s)));
}
Value Value::List(std::vector<Value> items, bool tuple) {
  auto data = std::make_shared<ListData>();
  data->items = std::move(items);
  data->tuple = tuple;
  return Value(Data(std::shared_ptr<const ListData>(std::move(data))));
}
Value Value::FromDict(std::shared_ptr<const Dict> d) { return Value(Data(std::move(d))); }
Value Value::FromObject(std::shared_ptr<Object> o) { return Value(Data(std::move(o))); }
Value Value::Iterator(std::vector<Value> items, std::string type_name, bool view) {
  auto data = std::make_shared<IteratorData>();
  data->items = std::move(items);
  data->type_name = std::move(type_name);
  data->view = view;
  return Value(Data(std::shared_ptr<const IteratorData>(std::move(data))));
}

bool Value::Truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return bool_value();
    case Kind::kInt:
      return int_value() != 0;
    case Kind::kFloat:
      return float_value() != 0.0;
    case Kind::kString:
      return !str().empty();
    case Kind::kList:
      return !items().empty();
    case Kind::kDict:
      return dict().size() != 0;
    case Kind::kObject:
      return true;
    case Kind::kIterator:
      return !iterator().view || !iterator().items.empty();
  }
  return false;
}

std::string Value::Str() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "";
    case Kind::kString:
      return str();
    default:
      return Repr();
  }
}

std::string Value::Repr() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return bool_value() ? "True" : "False";
    case Kind::kInt:
      return absl::StrCat(int_value());
    case Kind::kFloat:
      return PyFloatRepr(float_value());
    case Kind::kString:
      return PyStrRepr(str());
    case Kind::kList: {
      const ListData& l = list();
      std::string out = l.tuple ? "(" : "[";
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i > 0) out += ", ";
        out += l.items[i].Repr();
      }
      if (l.tuple && l.items.size() == 1) out += ",";
      out += l.tuple ? ")" : "]";
      return out;
    }
    case Kind::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : dict().entries()) {
        if (!first) out += ", ";
        first = false;
        absl::StrAppend(&out, k.Repr(), ": ", v.Repr());
      }
      return out + "}";
    }
    case Kind::kObject:
      return object().Repr();
    case Kind::kIterator: {
      const IteratorData& it = iterator();
      if (!it.view) return absl::StrCat("<", it.type_name, " object>");
      return absl::StrCat(it.type_name, "(", Value::List(it.items).Repr(), ")");
    }
  }
  return "";
}

std::string Value::TypeName() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return list().tuple ? "tuple" : "list";
    case Kind::kDict:
      return "dict";
    case Kind::kObject:
      return object().TypeName();
    case Kind::kIterator:
      return iterator().type_name;
  }
  return "";
}

std::string Value::ObjectTypeRepr() const {
  if (is_none()) return "None";
  if (is_object()) return object().TypeRepr();
  return TypeName() + " object";
}

std::string Value::UndefinedMessage() const {
  const UndefinedInfo* info = undefined_info();
  if (!info->hint.empty()) return info->hint;
  if (!info->has_owner) return absl::StrCat(PyStrRepr(info->name), " is undefined");
  if (info->element) return absl::StrCat(info->owner, " has no element ", info->name);
  return absl::StrCat(PyStrRepr(info->owner), " has no attribute ", PyStrRepr(info->name));
}

bool PyEquals(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.integral() == b.integral();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::kUndefined:
    case K::kNone:
      return true;
    case K::kBool:
    case K::kInt:
    case K::kFloat:
      return false;  // handled above
    case K::kString:
      return a.str() == b.str();
    case K::kList: {
      if (a.is_tuple() != b.is_tuple()) return false;
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!PyEquals(x[i], y[i])) return false;
      }
      return true;
    }
    case K::kDict: {
      const Dict& x = a.dict();
      const Dict& y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.entries()) {
        const Value* other = y.Find(k);
        if (other == nullptr || !PyEquals(v, *other)) return false;
      }
      return true;
    }
    case K::kObject:
      return &a.object() == &b.object();
    case K::kIterator:
      return &a.iterator() == &b.iterator();
  }
  return false;
}

void Dict::Set(Value key, Value value) {
  if (key.is_string()) {
    auto [it, inserted] = string_index_.try_emplace(key.str(), entries_.size());
    if (!inserted) {
      entries_[it->second].second = std::move(value);
      return;
    }
    entries_.emplace_back(std::move(key), std::move(value));
    return;
  }
  for (auto& entry : entries_) {
    if (PyEquals(entry.first, key)) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

const Value* Dict::Find(const Value& key) const {
  if (key.is_string()) return FindString(key.str());
  for (const auto& entry : entries_) {
    if (!entry.first.is_string() && PyEquals(entry.first, key)) return &entry.second;
  }
  return nullptr;
}

const Value* Dict::FindString(absl::string_view key) const {
  auto it = string_index_.find(key);
  return it == string_index_.end() ? nullptr : &entries_[it->second].second;
}

Value Object::GetAttr(absl::string_view name) const {
  UndefinedInfo info;
  info.name = std::string(name);
  info.owner = TypeRepr();
  info.has_owner = true;
  return Value::Undefined(std::move(info));
}

std::string Object::Repr() const { return absl::StrCat("<", TypeName(), ">"); }

absl::StatusOr<Value> Object::Call(CallArgs, Renderer&) const {
  return absl::InvalidArgumentError(absl::StrCat("'", TypeName(), "' object is not callable"));
}

}  // namespace tessera::jinja
