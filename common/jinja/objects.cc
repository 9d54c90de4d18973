#include "common/jinja/objects.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/interpreter.h"
#include "common/status_macros.h"

namespace tessera::jinja {
namespace {

Value HintUndefined(std::string hint) {
  UndefinedInfo info;
  info.hint = std::move(hint);
  return Value::Undefined(std::move(info));
}

}  // namespace

std::string Namespace::Repr() const {
  return absl::StrCat("<Namespace ", Value::FromDict(std::make_shared<Dict>(attrs_)).Repr(), ">");
}

Value Namespace::GetAttr(absl::string_view name) const {
  if (const Value* v = attrs_.FindString(name)) return *v;
  return Object::GetAttr(name);
}

std::string LoopObject::Repr() const {
  return absl::StrCat("<LoopContext ", index_ + 1, "/", items_->size(), ">");
}

Value LoopObject::GetAttr(absl::string_view name) const {
  const auto n = static_cast<int64_t>(items_->size());
  const auto i = static_cast<int64_t>(index_);
  if (name == "index") return Value::Int(i + 1);
  if (name == "index0") return Value::Int(i);
  if (name == "revindex") return Value::Int(n - i);
  if (name == "revindex0") return Value::Int(n - i - 1);
  if (name == "first") return Value::Bool(i == 0);
  if (name == "last") return Value::Bool(i == n - 1);
  if (name == "length") return Value::Int(n);
  if (name == "depth") return Value::Int(depth_);
  if (name == "depth0") return Value::Int(depth_ - 1);
  if (name == "previtem") {
    return i > 0 ? (*items_)[index_ - 1] : HintUndefined("there is no previous item");
  }
  if (name == "nextitem") {
    return i + 1 < n ? (*items_)[index_ + 1] : HintUndefined("there is no next item");
  }
  if (name == "cycle") {
    const size_t index = index_;
    return Value::FromObject(std::make_shared<BuiltinFunction>(
        "cycle", [index](CallArgs& args, Renderer&) -> absl::StatusOr<Value> {
          if (args.args.empty()) return absl::InvalidArgumentError("no items for cycling given");
          return args.args[index % args.args.size()];
        }));
  }
  return Object::GetAttr(name);
}

Value Macro::GetAttr(absl::string_view name) const {
  if (name == "name") return Value::String(name_);
  if (name == "arguments") {
    std::vector<Value> names;
    for (const MacroParam& p : *params_) names.push_back(Value::String(p.name));
    return Value::List(std::move(names), true);
  }
  return Object::GetAttr(name);
}

absl::StatusOr<Value> Macro::Call(CallArgs args, Renderer& renderer) const {
  RETURN_IF_ERROR(renderer.EnterCall());
  struct Leave {
    Renderer& r;
    ~Leave() { r.LeaveCall(); }
  } leave{renderer};
  std::shared_ptr<Frame> parent = closure_.lock();
  auto frame = std::make_shared<Frame>(parent != nullptr ? parent : renderer.root());
  const std::vector<MacroParam>& params = *params_;
  std::vector<bool> bound(params.size(), false);
  std::vector<Value> varargs;
  for (size_t i = 0; i < args.args.size(); ++i) {
    if (i < params.size()) {
      frame->Set(params[i].name, args.args[i]);
      bound[i] = true;
    } else {
      varargs.push_back(args.args[i]);
    }
  }
  auto kwargs = std::make_shared<Dict>();
  Value caller = caller_;
  for (auto& [key, value] : args.kwargs) {
    bool matched = false;
    for (size_t i = 0; i < params.size(); ++i) {
      if (params[i].name != key) continue;
      if (bound[i]) {
        return absl::InvalidArgumentError(
            absl::StrCat("macro '", name_, "' got multiple values for argument '", key, "'"));
      }
      frame->Set(key, value);
      bound[i] = true;
      matched = true;
    }
    if (matched) continue;
    if (key == "caller") {
      caller = value;
    } else {
      kwargs->Set(Value::String(key), value);
    }
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (bound[i]) continue;
    if (params[i].default_value != nullptr) {
      ASSIGN_OR_RETURN(Value v, renderer.Eval(*params[i].default_value, frame));
      frame->Set(params[i].name, std::move(v));
    } else {
      frame->Set(params[i].name,
                 HintUndefined(absl::StrCat("parameter '", params[i].name, "' was not provided")));
    }
  }
  frame->Set("varargs", Value::List(std::move(varargs), true));
  frame->Set("kwargs", Value::FromDict(std::move(kwargs)));
  if (!caller.is_undefined()) frame->Set("caller", caller);
  ASSIGN_OR_RETURN(std::string text, renderer.Capture(*body_, frame));
  return Value::String(std::move(text));
}

}  // namespace tessera::jinja
