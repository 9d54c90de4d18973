// The syntax tree of a parsed Jinja template. Built once by the parser,
// immutable afterwards, and shared read-only by concurrent renders.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/jinja/value.h"

namespace tessera::jinja {

enum class ExprKind {
  kConst,     // constant
  kName,      // name
  kList,      // [children...]
  kTuple,     // (children...)
  kDict,      // {children[0]: children[1], ...}
  kGetAttr,   // children[0].name
  kGetItem,   // children[0][children[1]]
  kSlice,     // children[0][children[1]:children[2]:children[3]] (null parts absent)
  kCall,      // children[0](children[1..], kwargs)
  kFilter,    // children[0] | name(children[1..], kwargs)
  kTest,      // children[0] is [not] name(children[1..], kwargs)
  kNeg,       // -children[0]
  kPos,       // +children[0]
  kNot,       // not children[0]
  kBinary,    // children[0] op children[1]
  kAnd,       // children[0] and children[1]
  kOr,        // children[0] or children[1]
  kCompare,   // children[0] cmp_ops[0] children[1] cmp_ops[1] children[2] ...
  kCondExpr,  // children[1] if children[0] else children[2] (children[2] may be null)
  kConcat,    // children joined by ~
};

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr {
  ExprKind kind = ExprKind::kConst;
  int line = 0;
  Value constant;    // kConst
  std::string name;  // kName, kGetAttr, kFilter, kTest
  std::vector<std::unique_ptr<Expr>> children;
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;  // kCall, kFilter, kTest
  BinaryOp op = BinaryOp::kAdd;
  std::vector<CompareOp> cmp_ops;
  bool negated = false;              // kTest: `is not`
  std::unique_ptr<Expr> dyn_args;    // kCall/kFilter/kTest: `*args` (null when absent)
  std::unique_ptr<Expr> dyn_kwargs;  // kCall/kFilter/kTest: `**kwargs` (null when absent)
};
using ExprPtr = std::unique_ptr<Expr>;

enum class StmtKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches (cond null = else)
  kFor,          // for target in expr [if filter]: body [else: else_body]
  kSet,          // set target = expr
  kSetBlock,     // set target [| filters]: body (filters applied to the captured text)
  kMacro,        // macro name(params): body
  kCallBlock,    // call[(params)] expr: body (body is `caller`)
  kFilterBlock,  // filter chain: body
  kBreak,
  kContinue,
  kScope,  // body in its own scope ({% with %}) or transparent ({% generation %})
};

// An assignment target: one name, a tuple of names, or `ns.attr`.
struct Target {
  std::vector<std::string> names;
  bool tuple = false;
  std::string attr;  // non-empty: names[0].attr (namespace attribute)
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null when required
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  std::string text;  // kText; macro name
  ExprPtr expr;      // output, for iterable, set value, call expression, filter chain
  ExprPtr filter;    // for ... if filter
  Target target;
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf
  Body body;
  Body else_body;
  std::vector<MacroParam> params;                       // kMacro, kCallBlock
  std::vector<std::pair<Target, ExprPtr>> assignments;  // kScope ({% with a = 1 %})
  bool new_scope = false;                               // kScope
};

}  // namespace tessera::jinja
