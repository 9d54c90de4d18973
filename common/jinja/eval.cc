// Expression evaluation of the Jinja evaluator (see interpreter.h).
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/access.h"
#include "common/jinja/builtins.h"
#include "common/jinja/interpreter.h"
#include "common/jinja/operators.h"
#include "common/status_macros.h"

namespace tessera::jinja {

absl::StatusOr<CallArgs> Renderer::EvalArgs(const Expr& expr, size_t first,
                                            const std::shared_ptr<Frame>& frame) {
  CallArgs args;
  for (size_t i = first; i < expr.children.size(); ++i) {
    ASSIGN_OR_RETURN(Value v, Eval(*expr.children[i], frame));
    args.args.push_back(std::move(v));
  }
  for (const auto& [key, value] : expr.kwargs) {
    ASSIGN_OR_RETURN(Value v, Eval(*value, frame));
    args.kwargs.emplace_back(key, std::move(v));
  }
  if (expr.dyn_args != nullptr) {
    ASSIGN_OR_RETURN(Value v, Eval(*expr.dyn_args, frame));
    if (v.is_undefined()) return absl::InvalidArgumentError(v.UndefinedMessage());
    ASSIGN_OR_RETURN(std::vector<Value> extra, Iterate(v));
    args.args.insert(args.args.end(), extra.begin(), extra.end());
  }
  if (expr.dyn_kwargs != nullptr) {
    ASSIGN_OR_RETURN(Value v, Eval(*expr.dyn_kwargs, frame));
    if (!v.is_dict()) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument after ** must be a mapping, not ", v.TypeName()));
    }
    for (const auto& [k, val] : v.dict().entries()) {
      if (!k.is_string()) return absl::InvalidArgumentError("keywords must be strings");
      args.kwargs.emplace_back(k.str(), val);
    }
  }
  return args;
}

absl::StatusOr<Value> Renderer::CallValue(const Value& callee, CallArgs args) {
  if (callee.is_undefined()) return absl::InvalidArgumentError(callee.UndefinedMessage());
  if (!callee.is_object() || !callee.object().IsCallable()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", callee.TypeName(), "' object is not callable"));
  }
  ASSIGN_OR_RETURN(Value result, callee.object().Call(std::move(args), *this));
  RETURN_IF_ERROR(ChargeValue(result));
  return result;
}

absl::StatusOr<Value> Renderer::CallFilter(absl::string_view name, const Value& input,
                                           CallArgs args) {
  const FilterFn fn = FindFilter(name);
  if (fn == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("No filter named '", name, "'."));
  ASSIGN_OR_RETURN(Value result, fn(*this, input, args));
  RETURN_IF_ERROR(ChargeValue(result));
  return result;
}

absl::StatusOr<bool> Renderer::CallTest(absl::string_view name, const Value& input, CallArgs args) {
  const TestFn fn = FindTest(name);
  if (fn == nullptr) return absl::InvalidArgumentError(absl::StrCat("No test named '", name, "'."));
  return fn(*this, input, args);
}

absl::StatusOr<Value> Renderer::EvalCompare(const Expr& expr, const std::shared_ptr<Frame>& frame) {
  ASSIGN_OR_RETURN(Value left, Eval(*expr.children[0], frame));
  for (size_t i = 0; i < expr.cmp_ops.size(); ++i) {
    ASSIGN_OR_RETURN(Value right, Eval(*expr.children[i + 1], frame));
    ASSIGN_OR_RETURN(bool ok, CompareValues(expr.cmp_ops[i], left, right));
    if (!ok) return Value::Bool(false);
    left = std::move(right);
  }
  return Value::Bool(true);
}

absl::StatusOr<Value> Renderer::Eval(const Expr& expr, const std::shared_ptr<Frame>& frame) {
  RETURN_IF_ERROR(EnterDepth());
  auto value = EvalInner(expr, frame);
  --depth_;
  return value;
}

absl::StatusOr<Value> Renderer::EvalInner(const Expr& expr, const std::shared_ptr<Frame>& frame) {
  RETURN_IF_ERROR(Step());
  line_ = expr.line;
  switch (expr.kind) {
    case ExprKind::kConst:
      return expr.constant;
    case ExprKind::kName: {
      if (const Value* v = frame->Find(expr.name)) return *v;
      if (const Value* g = FindGlobal(expr.name)) return *g;
      return Value::UndefinedName(expr.name);
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(expr.children.size());
      for (const auto& child : expr.children) {
        ASSIGN_OR_RETURN(Value v, Eval(*child, frame));
        items.push_back(std::move(v));
      }
      return Value::List(std::move(items), expr.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      auto dict = std::make_shared<Dict>();
      for (size_t i = 0; i + 1 < expr.children.size(); i += 2) {
        ASSIGN_OR_RETURN(Value k, Eval(*expr.children[i], frame));
        ASSIGN_OR_RETURN(Value v, Eval(*expr.children[i + 1], frame));
        if (k.is_list() && !k.is_tuple())
          return absl::InvalidArgumentError("unhashable type: 'list'");
        if (k.is_dict()) return absl::InvalidArgumentError("unhashable type: 'dict'");
        dict->Set(std::move(k), std::move(v));
      }
      return Value::FromDict(std::move(dict));
    }
    case ExprKind::kGetAttr: {
      ASSIGN_OR_RETURN(Value obj, Eval(*expr.children[0], frame));
      return GetAttribute(obj, expr.name);
    }
    case ExprKind::kGetItem: {
      ASSIGN_OR_RETURN(Value obj, Eval(*expr.children[0], frame));
      ASSIGN_OR_RETURN(Value key, Eval(*expr.children[1], frame));
      return GetItem(obj, key);
    }
    case ExprKind::kSlice: {
      ASSIGN_OR_RETURN(Value obj, Eval(*expr.children[0], frame));
      Value parts[3];
      for (int i = 0; i < 3; ++i) {
        if (expr.children[i + 1] != nullptr) {
          ASSIGN_OR_RETURN(parts[i], Eval(*expr.children[i + 1], frame));
          if (parts[i].is_undefined())
            parts[i] = Value::String("");  // not an index: Undefined result
        }
      }
      ASSIGN_OR_RETURN(Value sliced, SliceValue(obj, parts[0], parts[1], parts[2]));
      RETURN_IF_ERROR(ChargeValue(sliced));
      return sliced;
    }
    case ExprKind::kCall: {
      ASSIGN_OR_RETURN(Value callee, Eval(*expr.children[0], frame));
      ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr, 1, frame));
      return CallValue(callee, std::move(args));
    }
    case ExprKind::kFilter: {
      ASSIGN_OR_RETURN(Value input, Eval(*expr.children[0], frame));
      ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr, 1, frame));
      return CallFilter(expr.name, input, std::move(args));
    }
    case ExprKind::kTest: {
      ASSIGN_OR_RETURN(Value input, Eval(*expr.children[0], frame));
      ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr, 1, frame));
      ASSIGN_OR_RETURN(bool result, CallTest(expr.name, input, std::move(args)));
      return Value::Bool(result != expr.negated);
    }
    case ExprKind::kNeg:
    case ExprKind::kPos: {
      ASSIGN_OR_RETURN(Value v, Eval(*expr.children[0], frame));
      return UnaryOperation(v, expr.kind == ExprKind::kNeg);
    }
    case ExprKind::kNot: {
      ASSIGN_OR_RETURN(Value v, Eval(*expr.children[0], frame));
      return Value::Bool(!v.Truthy());
    }
    case ExprKind::kBinary: {
      ASSIGN_OR_RETURN(Value a, Eval(*expr.children[0], frame));
      ASSIGN_OR_RETURN(Value b, Eval(*expr.children[1], frame));
      return BinaryOperation(expr.op, a, b, *this);
    }
    case ExprKind::kAnd: {
      ASSIGN_OR_RETURN(Value a, Eval(*expr.children[0], frame));
      if (!a.Truthy()) return a;
      return Eval(*expr.children[1], frame);
    }
    case ExprKind::kOr: {
      ASSIGN_OR_RETURN(Value a, Eval(*expr.children[0], frame));
      if (a.Truthy()) return a;
      return Eval(*expr.children[1], frame);
    }
    case ExprKind::kCompare:
      return EvalCompare(expr, frame);
    case ExprKind::kCondExpr: {
      ASSIGN_OR_RETURN(Value cond, Eval(*expr.children[0], frame));
      if (cond.Truthy()) return Eval(*expr.children[1], frame);
      if (expr.children[2] == nullptr) return Value();
      return Eval(*expr.children[2], frame);
    }
    case ExprKind::kConcat: {
      std::string out;
      for (const auto& child : expr.children) {
        ASSIGN_OR_RETURN(Value v, Eval(*child, frame));
        if (v.is_string()) {
          RETURN_IF_ERROR(CheckSize(out.size() + v.str().size()));
          out += v.str();
        } else {
          out += v.Str();
          RETURN_IF_ERROR(CheckSize(out.size()));
        }
      }
      RETURN_IF_ERROR(Charge(out.size()));
      return Value::String(std::move(out));
    }
  }
  return Value();
}

}  // namespace tessera::jinja
