// Jinja2's builtin tests (`x is defined`, `x is divisibleby 3`, ...).
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/args.h"
#include "common/jinja/builtins.h"
#include "common/jinja/operators.h"
#include "common/jinja/unicode.h"
#include "common/status_macros.h"

namespace tessera::jinja {
namespace {

using Result = absl::StatusOr<bool>;

absl::Status NoArgs(const CallArgs& args, absl::string_view name) {
  return BindArgs(name, args, {}).status();
}

#define TESSERA_SIMPLE_TEST(NAME, EXPR)                       \
  Result NAME(Renderer&, const Value& v, const CallArgs& a) { \
    RETURN_IF_ERROR(NoArgs(a, #NAME));                        \
    return EXPR;                                              \
  }
TESSERA_SIMPLE_TEST(defined, !v.is_undefined())
TESSERA_SIMPLE_TEST(undefined, v.is_undefined())
TESSERA_SIMPLE_TEST(none, v.is_none())
TESSERA_SIMPLE_TEST(boolean, v.is_bool())
TESSERA_SIMPLE_TEST(true_test, v.is_bool() && v.bool_value())
TESSERA_SIMPLE_TEST(false_test, v.is_bool() && !v.bool_value())
TESSERA_SIMPLE_TEST(integer, v.is_int())
TESSERA_SIMPLE_TEST(float_test, v.is_float())
TESSERA_SIMPLE_TEST(number, v.is_number())
TESSERA_SIMPLE_TEST(string, v.is_string())
TESSERA_SIMPLE_TEST(mapping, v.is_dict())
TESSERA_SIMPLE_TEST(sequence, v.is_string() || v.is_list() || v.is_dict() || v.is_undefined())
TESSERA_SIMPLE_TEST(iterable, v.is_string() || v.is_list() || v.is_dict() || v.is_undefined() ||
                                  v.is_iterator())
// Jinja2's Undefined defines __call__ (to fail), so Python calls it callable.
TESSERA_SIMPLE_TEST(callable, (v.is_object() && v.object().IsCallable()) || v.is_undefined())
TESSERA_SIMPLE_TEST(escaped, (static_cast<void>(v), false))
TESSERA_SIMPLE_TEST(lower, v.is_string() && PyIsLower(v.str()))
TESSERA_SIMPLE_TEST(upper, v.is_string() && PyIsUpper(v.str()))
#undef TESSERA_SIMPLE_TEST

absl::StatusOr<double> Remainder(const Value& v, int64_t divisor) {
  if (!v.is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported operand type(s) for %: '", v.TypeName(), "' and 'int'"));
  }
  if (v.is_float()) return std::fmod(std::fabs(v.float_value()), static_cast<double>(divisor));
  return static_cast<double>(std::llabs(v.integral() % divisor));
}
Result odd(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "odd"));
  ASSIGN_OR_RETURN(double r, Remainder(v, 2));
  return r == 1.0;
}
Result even(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "even"));
  ASSIGN_OR_RETURN(double r, Remainder(v, 2));
  return r == 0.0;
}
Result divisibleby(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("divisibleby", args, {{"num", std::nullopt}}));
  if (!v.is_number() || !a[0].is_number()) {
    return absl::InvalidArgumentError("divisibleby requires numbers");
  }
  if (a[0].as_double() == 0)
    return absl::InvalidArgumentError("integer division or modulo by zero");
  if (v.is_float() || a[0].is_float()) return std::fmod(v.as_double(), a[0].as_double()) == 0;
  if (a[0].integral() == -1) return true;
  return v.integral() % a[0].integral() == 0;
}

#define TESSERA_COMPARE_TEST(NAME, OP)                                          \
  Result NAME(Renderer&, const Value& v, const CallArgs& args) {                \
    ASSIGN_OR_RETURN(auto a, BindArgs(#NAME, args, {{"other", std::nullopt}})); \
    return CompareValues(OP, v, a[0]);                                          \
  }
TESSERA_COMPARE_TEST(eq, CompareOp::kEq)
TESSERA_COMPARE_TEST(ne, CompareOp::kNe)
TESSERA_COMPARE_TEST(lt, CompareOp::kLt)
TESSERA_COMPARE_TEST(le, CompareOp::kLe)
TESSERA_COMPARE_TEST(gt, CompareOp::kGt)
TESSERA_COMPARE_TEST(ge, CompareOp::kGe)
TESSERA_COMPARE_TEST(in, CompareOp::kIn)
#undef TESSERA_COMPARE_TEST

Result sameas(Renderer&, const Value& v, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("sameas", args, {{"other", std::nullopt}}));
  const Value& o = a[0];
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case Value::Kind::kNone:
    case Value::Kind::kUndefined:
      return v.is_none();
    case Value::Kind::kBool:
      return v.bool_value() == o.bool_value();
    case Value::Kind::kInt:
      return v.int_value() == o.int_value() && v.int_value() >= -5 && v.int_value() <= 256;
    case Value::Kind::kFloat:
      return false;
    case Value::Kind::kString:
      return v.shared_str() == o.shared_str();
    case Value::Kind::kList:
      return &v.list() == &o.list();
    case Value::Kind::kDict:
      return &v.dict() == &o.dict();
    case Value::Kind::kObject:
      return &v.object() == &o.object();
    case Value::Kind::kIterator:
      return &v.iterator() == &o.iterator();
  }
  return false;
}
Result filter_test(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "filter"));
  return v.is_string() && FindFilter(v.str()) != nullptr;
}
Result test_test(Renderer&, const Value& v, const CallArgs& a) {
  RETURN_IF_ERROR(NoArgs(a, "test"));
  return v.is_string() && FindTest(v.str()) != nullptr;
}

struct Entry {
  absl::string_view name;
  TestFn fn;
};
constexpr Entry kTests[] = {
    {"defined", defined},
    {"undefined", undefined},
    {"none", none},
    {"boolean", boolean},
    {"true", true_test},
    {"false", false_test},
    {"integer", integer},
    {"float", float_test},
    {"number", number},
    {"string", string},
    {"mapping", mapping},
    {"sequence", sequence},
    {"iterable", iterable},
    {"callable", callable},
    {"escaped", escaped},
    {"lower", lower},
    {"upper", upper},
    {"odd", odd},
    {"even", even},
    {"divisibleby", divisibleby},
    {"eq", eq},
    {"equalto", eq},
    {"==", eq},
    {"ne", ne},
    {"!=", ne},
    {"lt", lt},
    {"lessthan", lt},
    {"<", lt},
    {"le", le},
    {"<=", le},
    {"gt", gt},
    {"greaterthan", gt},
    {">", gt},
    {"ge", ge},
    {">=", ge},
    {"in", in},
    {"sameas", sameas},
    {"filter", filter_test},
    {"test", test_test},
};

}  // namespace

TestFn FindTest(absl::string_view name) {
  for (const Entry& e : kTests) {
    if (e.name == name) return e.fn;
  }
  return nullptr;
}

FilterFn FindFilter(absl::string_view name) {
  if (FilterFn f = FindTextFilter(name)) return f;
  return FindSequenceFilter(name);
}

}  // namespace tessera::jinja
