// Python's arithmetic, comparison and membership operators over Values
// (int/float promotion, floor division and modulo signs, str/list
// concatenation and repetition, chained-comparison building blocks).
// Integers are 64-bit: a result that does not fit is an error, never a wrong
// value. Thread-safe.
#pragma once

#include "absl/status/statusor.h"
#include "common/jinja/ast.h"
#include "common/jinja/value.h"

namespace tessera::jinja {

class Renderer;

// a op b. Sizes of built strings/lists are charged to `renderer`.
absl::StatusOr<Value> BinaryOperation(BinaryOp op, const Value& a, const Value& b,
                                      Renderer& renderer);
// -a (negate) or +a.
absl::StatusOr<Value> UnaryOperation(const Value& a, bool negate);
absl::StatusOr<bool> CompareValues(CompareOp op, const Value& a, const Value& b);
// `item in container`.
absl::StatusOr<bool> Contains(const Value& container, const Value& item);
// a < b with Python's rules (TypeError between unrelated types).
absl::StatusOr<bool> PyLess(const Value& a, const Value& b);
// Python `fmt % args` for %s %r %d %i %f %x %%.
absl::StatusOr<Value> PercentFormat(const std::string& fmt, const Value& args);

}  // namespace tessera::jinja
