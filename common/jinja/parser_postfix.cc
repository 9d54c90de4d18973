// Postfix syntax of Jinja expressions: attribute and item access, slices,
// calls, filters and tests (see parser_internal.h).
#include "absl/strings/str_cat.h"
#include "common/jinja/parser_internal.h"
#include "common/status_macros.h"

namespace tessera::jinja::internal {
namespace {

ExprPtr MakeExpr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

}  // namespace

absl::StatusOr<ExprPtr> Parser::ParsePostfix(ExprPtr node) {
  ChainGuard chain(depth_);
  while (IsOp(".") || IsOp("[") || IsOp("(")) {
    if (!chain.Add()) return Fail("expression nested too deeply");
    if (IsOp("(")) {
      ASSIGN_OR_RETURN(node, ParseCallArgs(std::move(node), ExprKind::kCall, ""));
    } else {
      ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node)));
    }
  }
  return node;
}

absl::StatusOr<ExprPtr> Parser::ParseFilterExpr(ExprPtr node) {
  ChainGuard chain(depth_);
  while (IsOp("|") || IsName("is") || IsOp("(")) {
    if (!chain.Add()) return Fail("expression nested too deeply");
    if (IsOp("|")) {
      ASSIGN_OR_RETURN(node, ParseFilters(std::move(node), false));
    } else if (IsName("is")) {
      ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
    } else {
      ASSIGN_OR_RETURN(node, ParseCallArgs(std::move(node), ExprKind::kCall, ""));
    }
  }
  return node;
}

absl::StatusOr<ExprPtr> Parser::ParseSubscript(ExprPtr node) {
  const int line = Current().line;
  if (SkipOp(".")) {
    const Token& attr = Current();
    if (attr.type == TokenType::kName) {
      ExprPtr e = MakeExpr(ExprKind::kGetAttr, line);
      e->name = attr.value;
      e->children.push_back(std::move(node));
      Advance();
      return e;
    }
    if (attr.type != TokenType::kInteger) return Fail("expected name or number");
    ExprPtr key = MakeExpr(ExprKind::kConst, line);
    key->constant = Value::Int(attr.int_value);
    Advance();
    ExprPtr e = MakeExpr(ExprKind::kGetItem, line);
    e->children.push_back(std::move(node));
    e->children.push_back(std::move(key));
    return e;
  }
  RETURN_IF_ERROR(ExpectOp("["));
  std::vector<ExprPtr> args;
  while (!IsOp("]")) {
    if (!args.empty()) RETURN_IF_ERROR(ExpectOp(","));
    ASSIGN_OR_RETURN(ExprPtr arg, ParseSubscribed());
    args.push_back(std::move(arg));
  }
  RETURN_IF_ERROR(ExpectOp("]"));
  if (args.empty()) return Fail("expected an index or a slice");
  if (args.size() == 1 && args[0]->kind == ExprKind::kSlice) {
    args[0]->children[0] = std::move(node);
    return std::move(args[0]);
  }
  ExprPtr key;
  if (args.size() == 1) {
    key = std::move(args[0]);
  } else {
    key = MakeExpr(ExprKind::kTuple, line);
    for (auto& a : args) {
      if (a->kind == ExprKind::kSlice) return Fail("slices inside a tuple index are not supported");
      key->children.push_back(std::move(a));
    }
  }
  ExprPtr e = MakeExpr(ExprKind::kGetItem, line);
  e->children.push_back(std::move(node));
  e->children.push_back(std::move(key));
  return e;
}

// One subscript: an expression or a slice `[start]:[stop][:[step]]`. A slice
// comes back as kSlice with children {null (object, filled in by the caller),
// start, stop, step}.
absl::StatusOr<ExprPtr> Parser::ParseSubscribed() {
  const int line = Current().line;
  ExprPtr start;
  if (!IsOp(":")) {
    ASSIGN_OR_RETURN(start, ParseExpression(true));
    if (!IsOp(":")) return start;
  }
  Advance();  // ':'
  auto part_ends = [&] { return IsOp("]") || IsOp(",") || IsOp(":"); };
  ExprPtr stop;
  if (!part_ends()) {
    ASSIGN_OR_RETURN(stop, ParseExpression(true));
  }
  ExprPtr step;
  if (SkipOp(":") && !IsOp("]") && !IsOp(",")) {
    ASSIGN_OR_RETURN(step, ParseExpression(true));
  }
  ExprPtr e = MakeExpr(ExprKind::kSlice, line);
  e->children.push_back(nullptr);
  e->children.push_back(std::move(start));
  e->children.push_back(std::move(stop));
  e->children.push_back(std::move(step));
  return e;
}

absl::StatusOr<ExprPtr> Parser::ParseCallArgs(ExprPtr node, ExprKind kind, std::string name) {
  const int line = Current().line;
  ExprPtr e = MakeExpr(kind, line);
  e->name = std::move(name);
  e->children.push_back(std::move(node));
  RETURN_IF_ERROR(ExpectOp("("));
  bool require_comma = false;
  while (!IsOp(")")) {
    if (require_comma) {
      RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp(")")) break;
    }
    if (IsOp("*")) {
      if (e->dyn_args != nullptr || e->dyn_kwargs != nullptr)
        return Fail("invalid syntax for function call expression");
      Advance();
      ASSIGN_OR_RETURN(e->dyn_args, ParseExpression(true));
      require_comma = true;
      continue;
    }
    if (IsOp("**")) {
      if (e->dyn_kwargs != nullptr) return Fail("invalid syntax for function call expression");
      Advance();
      ASSIGN_OR_RETURN(e->dyn_kwargs, ParseExpression(true));
      require_comma = true;
      continue;
    }
    if (Current().type == TokenType::kName && Look().type == TokenType::kOperator &&
        Look().value == "=") {
      std::string key = Current().value;
      Advance();
      Advance();
      ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      if (e->dyn_kwargs != nullptr) return Fail("invalid syntax for function call expression");
      e->kwargs.emplace_back(std::move(key), std::move(value));
    } else {
      if (!e->kwargs.empty() || e->dyn_args != nullptr || e->dyn_kwargs != nullptr) {
        return Fail("invalid syntax for function call expression");
      }
      ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      e->children.push_back(std::move(value));
    }
    require_comma = true;
  }
  RETURN_IF_ERROR(ExpectOp(")"));
  return e;
}

absl::StatusOr<ExprPtr> Parser::ParseFilters(ExprPtr node, bool start_inline) {
  ChainGuard chain(depth_);
  while (IsOp("|") || start_inline) {
    if (!chain.Add()) return Fail("expression nested too deeply");
    if (!start_inline) Advance();
    start_inline = false;
    ASSIGN_OR_RETURN(std::string name, ExpectName());
    while (SkipOp(".")) {
      ASSIGN_OR_RETURN(std::string part, ExpectName());
      absl::StrAppend(&name, ".", part);
    }
    if (IsOp("(")) {
      ASSIGN_OR_RETURN(node, ParseCallArgs(std::move(node), ExprKind::kFilter, std::move(name)));
    } else {
      ExprPtr e = MakeExpr(ExprKind::kFilter, Current().line);
      e->name = std::move(name);
      e->children.push_back(std::move(node));
      node = std::move(e);
    }
  }
  return node;
}

absl::StatusOr<ExprPtr> Parser::ParseTest(ExprPtr node) {
  const int line = Current().line;
  Advance();  // 'is'
  const bool negated = SkipName("not");
  ASSIGN_OR_RETURN(std::string name, ExpectName());
  while (SkipOp(".")) {
    ASSIGN_OR_RETURN(std::string part, ExpectName());
    absl::StrAppend(&name, ".", part);
  }
  ExprPtr e;
  const Token& t = Current();
  const bool arg_start = t.type == TokenType::kName || t.type == TokenType::kString ||
                         t.type == TokenType::kInteger || t.type == TokenType::kFloat ||
                         (t.type == TokenType::kOperator && (t.value == "[" || t.value == "{"));
  if (IsOp("(")) {
    ASSIGN_OR_RETURN(e, ParseCallArgs(std::move(node), ExprKind::kTest, std::move(name)));
  } else if (arg_start && !IsName("else") && !IsName("or") && !IsName("and")) {
    if (IsName("is")) return Fail("You cannot chain multiple tests with is");
    ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
    ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
    e = MakeExpr(ExprKind::kTest, line);
    e->name = std::move(name);
    e->children.push_back(std::move(node));
    e->children.push_back(std::move(arg));
  } else {
    e = MakeExpr(ExprKind::kTest, line);
    e->name = std::move(name);
    e->children.push_back(std::move(node));
  }
  e->negated = negated;
  return e;
}

}  // namespace tessera::jinja::internal
