#include "common/jinja/operators.h"

#include <cmath>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/access.h"
#include "common/jinja/interpreter.h"

namespace tessera::jinja {
namespace {

absl::Status Overflow() {
  return absl::InvalidArgumentError("integer overflow: the result does not fit in 64 bits");
}

const char* OpSymbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kFloorDiv:
      return "//";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kPow:
      return "** or pow()";
  }
  return "?";
}

absl::Status Unsupported(BinaryOp op, const Value& a, const Value& b) {
  if (op == BinaryOp::kAdd && a.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("can only concatenate str (not \"", b.TypeName(), "\") to str"));
  }
  if (op == BinaryOp::kAdd && a.is_list() && b.is_list()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "can only concatenate ", a.TypeName(), " (not \"", b.TypeName(), "\") to ", a.TypeName()));
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported operand type(s) for ", OpSymbol(op),
                                                 ": '", a.TypeName(), "' and '", b.TypeName(),
                                                 "'"));
}

absl::StatusOr<Value> IntOp(BinaryOp op, int64_t x, int64_t y) {
  int64_t r = 0;
  switch (op) {
    case BinaryOp::kAdd:
      if (__builtin_add_overflow(x, y, &r)) return Overflow();
      return Value::Int(r);
    case BinaryOp::kSub:
      if (__builtin_sub_overflow(x, y, &r)) return Overflow();
      return Value::Int(r);
    case BinaryOp::kMul:
      if (__builtin_mul_overflow(x, y, &r)) return Overflow();
      return Value::Int(r);
    case BinaryOp::kDiv:
      if (y == 0) return absl::InvalidArgumentError("division by zero");
      return Value::Float(static_cast<double>(x) / static_cast<double>(y));
    case BinaryOp::kFloorDiv:
    case BinaryOp::kMod: {
      if (y == 0) {
        return absl::InvalidArgumentError(
            op == BinaryOp::kMod ? "integer modulo by zero" : "integer division or modulo by zero");
      }
      if (x == INT64_MIN && y == -1) return Overflow();
      int64_t q = x / y;
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return Value::Int(op == BinaryOp::kFloorDiv ? q : m);
    }
    case BinaryOp::kPow: {
      if (y < 0) return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
      int64_t result = 1;
      int64_t base = x;
      while (y > 0) {
        if (y & 1) {
          if (__builtin_mul_overflow(result, base, &result)) return Overflow();
        }
        y >>= 1;
        if (y > 0 && __builtin_mul_overflow(base, base, &base)) return Overflow();
      }
      return Value::Int(result);
    }
  }
  return Overflow();
}

absl::StatusOr<Value> FloatOp(BinaryOp op, double x, double y) {
  switch (op) {
    case BinaryOp::kAdd:
      return Value::Float(x + y);
    case BinaryOp::kSub:
      return Value::Float(x - y);
    case BinaryOp::kMul:
      return Value::Float(x * y);
    case BinaryOp::kDiv:
      if (y == 0) return absl::InvalidArgumentError("float division by zero");
      return Value::Float(x / y);
    case BinaryOp::kFloorDiv:
    case BinaryOp::kMod: {
      if (y == 0) {
        return absl::InvalidArgumentError(op == BinaryOp::kMod ? "float modulo"
                                                               : "float floor division by zero");
      }
      double m = std::fmod(x, y);
      double div = (x - m) / y;
      if (m != 0 && ((y < 0) != (m < 0))) {
        m += y;
        div -= 1.0;
      }
      if (op == BinaryOp::kMod) return Value::Float(m == 0 ? std::copysign(0.0, y) : m);
      double floordiv = std::floor(div);
      if (div - floordiv > 0.5) floordiv += 1.0;
      if (div == 0) floordiv = std::copysign(0.0, x / y);
      return Value::Float(floordiv);
    }
    case BinaryOp::kPow:
      if (x == 0 && y < 0) {
        return absl::InvalidArgumentError("0.0 cannot be raised to a negative power");
      }
      return Value::Float(std::pow(x, y));
  }
  return absl::InvalidArgumentError("bad float operation");
}

absl::StatusOr<Value> Repeat(const Value& seq, int64_t n, Renderer& renderer) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const std::string& s = seq.str();
    if (!s.empty() && n > 0) {
      if (absl::Status st = renderer.ChargeString(
              s.size() * static_cast<size_t>(std::min<int64_t>(n, INT32_MAX)));
          !st.ok())
        return st;
    }
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value::String(std::move(out));
  }
  const auto& items = seq.items();
  if (!items.empty() && n > 0) {
    if (absl::Status st = renderer.Charge(
            items.size() * static_cast<size_t>(std::min<int64_t>(n, INT32_MAX)) * sizeof(Value));
        !st.ok())
      return st;
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::List(std::move(out), seq.is_tuple());
}

}  // namespace

absl::StatusOr<Value> BinaryOperation(BinaryOp op, const Value& a, const Value& b,
                                      Renderer& renderer) {
  if (a.is_undefined()) return absl::InvalidArgumentError(a.UndefinedMessage());
  if (b.is_undefined()) return absl::InvalidArgumentError(b.UndefinedMessage());
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return FloatOp(op, a.as_double(), b.as_double());
    return IntOp(op, a.integral(), b.integral());
  }
  if (op == BinaryOp::kAdd) {
    if (a.is_string() && b.is_string()) {
      if (absl::Status st = renderer.ChargeString(a.str().size() + b.str().size()); !st.ok())
        return st;
      return Value::String(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      if (absl::Status st = renderer.Charge((a.items().size() + b.items().size()) * sizeof(Value));
          !st.ok())
        return st;
      std::vector<Value> out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return Value::List(std::move(out), a.is_tuple());
    }
  }
  if (op == BinaryOp::kMul) {
    if ((a.is_string() || a.is_list()) && b.is_integral()) return Repeat(a, b.integral(), renderer);
    if ((b.is_string() || b.is_list()) && a.is_integral()) return Repeat(b, a.integral(), renderer);
  }
  if (op == BinaryOp::kMod && a.is_string()) return PercentFormat(a.str(), b);
  return Unsupported(op, a, b);
}

absl::StatusOr<Value> UnaryOperation(const Value& a, bool negate) {
  if (a.is_undefined()) return absl::InvalidArgumentError(a.UndefinedMessage());
  if (a.is_float()) return Value::Float(negate ? -a.float_value() : a.float_value());
  if (a.is_integral()) {
    if (!negate) return Value::Int(a.integral());
    if (a.integral() == INT64_MIN) return Overflow();
    return Value::Int(-a.integral());
  }
  return absl::InvalidArgumentError(
      absl::StrCat("bad operand type for unary ", negate ? "-" : "+", ": '", a.TypeName(), "'"));
}

absl::StatusOr<bool> PyLess(const Value& a, const Value& b) {
  if (a.is_undefined()) return absl::InvalidArgumentError(a.UndefinedMessage());
  if (b.is_undefined()) return absl::InvalidArgumentError(b.UndefinedMessage());
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.integral() < b.integral();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 order = code point order
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (PyEquals(x[i], y[i])) continue;
      return PyLess(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  return absl::InvalidArgumentError(absl::StrCat("'<' not supported between instances of '",
                                                 a.TypeName(), "' and '", b.TypeName(), "'"));
}

absl::StatusOr<bool> CompareValues(CompareOp op, const Value& a, const Value& b) {
  auto ordered = [&](const char* sym, const Value& x, const Value& y) -> absl::StatusOr<bool> {
    absl::StatusOr<bool> r = PyLess(x, y);
    if (!r.ok() && !x.is_undefined() && !y.is_undefined()) {
      return absl::InvalidArgumentError(absl::StrCat("'", sym,
                                                     "' not supported between instances of '",
                                                     a.TypeName(), "' and '", b.TypeName(), "'"));
    }
    return r;
  };
  switch (op) {
    case CompareOp::kEq:
      return PyEquals(a, b);
    case CompareOp::kNe:
      return !PyEquals(a, b);
    case CompareOp::kLt:
      return ordered("<", a, b);
    case CompareOp::kGt:
      return ordered(">", b, a);
    case CompareOp::kLe: {
      auto r = ordered("<=", b, a);
      if (!r.ok()) return r;
      return !*r;
    }
    case CompareOp::kGe: {
      auto r = ordered(">=", a, b);
      if (!r.ok()) return r;
      return !*r;
    }
    case CompareOp::kIn:
      return Contains(b, a);
    case CompareOp::kNotIn: {
      auto r = Contains(b, a);
      if (!r.ok()) return r;
      return !*r;
    }
  }
  return false;
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("'in <string>' requires string as left operand, not ", item.TypeName()));
      }
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : container.items()) {
        if (PyEquals(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return container.dict().Find(item) != nullptr;
    case Value::Kind::kIterator: {
      auto items = Iterate(container);
      if (!items.ok()) return items.status();
      for (const Value& v : *items) {
        if (PyEquals(v, item)) return true;
      }
      return false;
    }
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kObject:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("argument of type '", container.TypeName(), "' is not iterable"));
}

}  // namespace tessera::jinja
