// The opaque objects a template can hold: namespace(), the loop variable,
// macros (and `caller`), builtin functions and bound methods. They live within
// one render (not thread-safe), except builtin functions, which are immutable
// and shared by all renders.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/jinja/ast.h"
#include "common/jinja/value.h"

namespace tessera::jinja {

class Frame;

// Jinja2's namespace(): the one object templates may mutate (`set ns.x = ...`).
class Namespace : public Object {
 public:
  std::string TypeName() const override { return "Namespace"; }
  std::string TypeRepr() const override { return "jinja2.utils.Namespace object"; }
  std::string Repr() const override;
  Value GetAttr(absl::string_view name) const override;
  // Drops every attribute (the renderer does this when a render ends, which
  // breaks reference cycles such as `set ns.self = ns`).
  void Clear() { attrs_ = Dict(); }
  void SetAttr(absl::string_view name, Value value) {
    attrs_.Set(Value::String(std::string(name)), std::move(value));
  }

 private:
  Dict attrs_;
};

// The `loop` variable of a for loop; the loop advances it with `index`.
class LoopObject : public Object {
 public:
  LoopObject(std::shared_ptr<const std::vector<Value>> items, int depth)
      : items_(std::move(items)), depth_(depth) {}
  std::string TypeName() const override { return "LoopContext"; }
  std::string TypeRepr() const override { return "jinja2.runtime.LoopContext object"; }
  std::string Repr() const override;
  Value GetAttr(absl::string_view name) const override;
  void set_index(size_t index) { index_ = index; }

 private:
  std::shared_ptr<const std::vector<Value>> items_;
  size_t index_ = 0;
  int depth_;
};

// A function implemented in C++ (globals such as range(), and loop.cycle).
using NativeFn = std::function<absl::StatusOr<Value>(CallArgs&, Renderer&)>;
class BuiltinFunction : public Object {
 public:
  BuiltinFunction(std::string name, NativeFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string TypeName() const override { return "builtin_function_or_method"; }
  std::string Repr() const override { return absl::StrCat("<built-in function ", name_, ">"); }
  bool IsCallable() const override { return true; }
  absl::StatusOr<Value> Call(CallArgs args, Renderer& renderer) const override {
    return fn_(args, renderer);
  }

 private:
  std::string name_;
  NativeFn fn_;
};

// A method bound to its receiver (`'a b'.split`, `d.items`).
using MethodFn = absl::StatusOr<Value> (*)(const Value& self, CallArgs& args, Renderer& renderer);
class BoundMethod : public Object {
 public:
  BoundMethod(Value self, std::string name, MethodFn fn)
      : self_(std::move(self)), name_(std::move(name)), fn_(fn) {}
  std::string TypeName() const override { return "builtin_function_or_method"; }
  std::string Repr() const override {
    return absl::StrCat("<built-in method ", name_, " of ", self_.TypeName(), " object>");
  }
  bool IsCallable() const override { return true; }
  absl::StatusOr<Value> Call(CallArgs args, Renderer& renderer) const override {
    return fn_(self_, args, renderer);
  }

 private:
  Value self_;
  std::string name_;
  MethodFn fn_;
};

// A {% macro %} (or the `caller` of a {% call %} block). Calls render the body
// in a new scope under `closure` (the template's root scope when null or gone).
// The closure is held weakly: the scope holds the macro, so a strong reference
// would be a cycle that outlives the render.
class Macro : public Object {
 public:
  Macro(std::string name, const std::vector<MacroParam>* params, const Body* body,
        std::shared_ptr<Frame> closure, Value caller)
      : name_(std::move(name)),
        params_(params),
        body_(body),
        closure_(std::move(closure)),
        caller_(std::move(caller)) {}
  std::string TypeName() const override { return "Macro"; }
  std::string TypeRepr() const override { return "jinja2.runtime.Macro object"; }
  std::string Repr() const override { return absl::StrCat("<Macro '", name_, "'>"); }
  Value GetAttr(absl::string_view name) const override;
  bool IsCallable() const override { return true; }
  absl::StatusOr<Value> Call(CallArgs args, Renderer& renderer) const override;

 private:
  std::string name_;
  const std::vector<MacroParam>* params_;
  const Body* body_;
  std::weak_ptr<Frame> closure_;
  Value caller_;  // Undefined unless this macro is called by a {% call %} block
};

}  // namespace tessera::jinja
