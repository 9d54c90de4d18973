// The value type of the Jinja interpreter: Python's data model, reduced to what
// chat templates touch (Jinja2 Undefined, None, bool, int, float, str, list,
// tuple, dict, and opaque objects such as namespace(), loop and macros).
//
// Values are cheap to copy: strings, lists and dicts are shared immutable
// payloads (the sandbox Jinja2 uses forbids mutating them); only Object
// subclasses such as Namespace carry mutable state. A Value and everything it
// references belong to one render: they are not thread-safe, except that
// strings and numbers may be shared read-only (template constants).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::jinja {

class Value;
class Dict;
class Object;
class Renderer;

// Why a value is undefined; yields Jinja2's UndefinedError message.
struct UndefinedInfo {
  std::string name;   // variable, attribute or key (its repr when not a string)
  std::string owner;  // object_type_repr of the owner; empty for a plain name
  bool has_owner = false;
  bool element = false;  // a non-string key: "... has no element ..."
  std::string hint;      // overrides the message when set (e.g. unsafe access)
};

struct ListData {
  std::vector<Value> items;
  bool tuple = false;
};

// Python's non-list iterables that Jinja filters and dict methods return:
// generators (map, select, ...; single use, no len(), always truthy) and dict
// views (dict_items, dict_keys, dict_values; len() but no indexing).
struct IteratorData {
  std::vector<Value> items;
  std::string type_name;          // "generator", "dict_items", "list_reverseiterator", ...
  bool view = false;              // dict view: reusable, has len(), repr shows the items
  mutable bool consumed = false;  // a generator yields its items once
};

// Positional and keyword arguments of a call.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kObject,
    kIterator
  };

  Value();  // Undefined without a name.
  static Value Undefined(UndefinedInfo info);
  static Value UndefinedName(std::string name);
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value StringShared(std::shared_ptr<const std::string> s);
  static Value List(std::vector<Value> items, bool tuple = false);
  static Value FromDict(std::shared_ptr<const Dict> d);
  static Value FromObject(std::shared_ptr<Object> o);
  static Value Iterator(std::vector<Value> items, std::string type_name, bool view = false);

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // int or bool (Python bool is an int subclass) or float.
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_integral() const { return is_int() || is_bool(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_tuple() const { return is_list() && list().tuple; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_iterator() const { return kind() == Kind::kIterator; }

  bool bool_value() const { return std::get<bool>(data_); }
  int64_t int_value() const { return std::get<int64_t>(data_); }
  // int/bool as int64.
  int64_t integral() const { return is_bool() ? bool_value() : int_value(); }
  double float_value() const { return std::get<double>(data_); }
  // Any number as double.
  double as_double() const { return is_float() ? float_value() : static_cast<double>(integral()); }
  const std::string& str() const { return *std::get<std::shared_ptr<const std::string>>(data_); }
  const std::shared_ptr<const std::string>& shared_str() const {
    return std::get<std::shared_ptr<const std::string>>(data_);
  }
  const ListData& list() const { return *std::get<std::shared_ptr<const ListData>>(data_); }
  const std::vector<Value>& items() const { return list().items; }
  const std::shared_ptr<const ListData>& shared_list() const {
    return std::get<std::shared_ptr<const ListData>>(data_);
  }
  const Dict& dict() const { return *std::get<std::shared_ptr<const Dict>>(data_); }
  const std::shared_ptr<const Dict>& shared_dict() const {
    return std::get<std::shared_ptr<const Dict>>(data_);
  }
  Object& object() const { return *std::get<std::shared_ptr<Object>>(data_); }
  const IteratorData& iterator() const {
    return *std::get<std::shared_ptr<const IteratorData>>(data_);
  }
  // Never null for an Undefined value.
  const UndefinedInfo* undefined_info() const;

  // Python truthiness (Undefined is falsy).
  bool Truthy() const;
  // Python str() (Undefined -> ""), repr(), and type(x).__name__.
  std::string Str() const;
  std::string Repr() const;
  std::string TypeName() const;
  // Jinja2's object_type_repr: "None", "dict object", ...
  std::string ObjectTypeRepr() const;
  // Jinja2's UndefinedError message for an Undefined value.
  std::string UndefinedMessage() const;

 private:
  struct NoneTag {};
  using Data = std::variant<std::shared_ptr<const UndefinedInfo>, NoneTag, bool, int64_t, double,
                            std::shared_ptr<const std::string>, std::shared_ptr<const ListData>,
                            std::shared_ptr<const Dict>, std::shared_ptr<Object>,
                            std::shared_ptr<const IteratorData>>;
  explicit Value(Data d) : data_(std::move(d)) {}
  Data data_;
};

// Python ==. Numbers compare by value across int/float/bool; Undefined equals
// only Undefined.
bool PyEquals(const Value& a, const Value& b);

// An insertion-ordered dict (Python 3.7+). Immutable once shared in a Value.
class Dict {
 public:
  // Inserts or replaces (keeping the first insertion position, as Python does).
  void Set(Value key, Value value);
  // nullptr when absent.
  const Value* Find(const Value& key) const;
  const Value* FindString(absl::string_view key) const;
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<Value, Value>> entries_;
  absl::flat_hash_map<std::string, size_t> string_index_;
};

// Opaque objects: namespace(), loop, macros, builtin functions, bound methods.
class Object {
 public:
  virtual ~Object() = default;
  // Python type name, e.g. "Namespace", "Macro", "builtin_function_or_method".
  virtual std::string TypeName() const = 0;
  // Jinja2's object_type_repr of this object.
  virtual std::string TypeRepr() const { return TypeName() + " object"; }
  virtual std::string Repr() const;
  // x.name; Undefined when absent.
  virtual Value GetAttr(absl::string_view name) const;
  virtual bool IsCallable() const { return false; }
  // Calls the object; only called when IsCallable().
  virtual absl::StatusOr<Value> Call(CallArgs args, Renderer& renderer) const;
};

}  // namespace tessera::jinja
