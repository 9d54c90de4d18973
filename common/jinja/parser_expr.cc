// Expression half of the Jinja parser (see parser_internal.h).
#include "absl/strings/str_cat.h"
#include "common/jinja/parser.h"
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

ExprPtr MakeUnary(ExprKind kind, int line, ExprPtr operand) {
  ExprPtr e = MakeExpr(kind, line);
  e->children.push_back(std::move(operand));
  return e;
}

ExprPtr MakeBinary(ExprKind kind, int line, ExprPtr a, ExprPtr b) {
  ExprPtr e = MakeExpr(kind, line);
  e->children.push_back(std::move(a));
  e->children.push_back(std::move(b));
  return e;
}

}  // namespace

DepthGuard::DepthGuard(int& depth) : depth_(depth) { ++depth_; }
bool DepthGuard::ok() const { return depth_ <= kMaxParseDepth; }

bool ChainGuard::Add() {
  ++depth_;
  ++added_;
  return depth_ <= kMaxParseDepth;
}

absl::Status Parser::FailAt(const Token& token, absl::string_view msg) const {
  return absl::InvalidArgumentError(absl::StrCat("template syntax error at line ", token.line,
                                                 ", column ", token.column, ": ", msg));
}

absl::Status Parser::ExpectOp(absl::string_view op) {
  if (SkipOp(op)) return absl::OkStatus();
  return Fail(absl::StrCat("expected token '", op, "', got '", DescribeToken(Current()), "'"));
}

absl::Status Parser::ExpectType(TokenType type, absl::string_view what) {
  if (Current().type == type) {
    Advance();
    return absl::OkStatus();
  }
  return Fail(absl::StrCat("expected token '", what, "', got '", DescribeToken(Current()), "'"));
}

absl::StatusOr<std::string> Parser::ExpectName() {
  if (Current().type != TokenType::kName) {
    return Fail(absl::StrCat("expected token 'name', got '", DescribeToken(Current()), "'"));
  }
  std::string name = Current().value;
  Advance();
  return name;
}

absl::StatusOr<ExprPtr> Parser::ParseExpression(bool with_condexpr) {
  DepthGuard guard(depth_);
  if (!guard.ok()) return Fail("expression nested too deeply");
  return with_condexpr ? ParseCondExpr() : ParseOr();
}

absl::StatusOr<ExprPtr> Parser::ParseCondExpr() {
  const int line = Current().line;
  ASSIGN_OR_RETURN(ExprPtr expr1, ParseOr());
  ChainGuard chain(depth_);
  while (SkipName("if")) {
    if (!chain.Add()) return Fail("expression nested too deeply");
    ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
    ExprPtr else_expr;
    if (SkipName("else")) {
      ASSIGN_OR_RETURN(else_expr, ParseExpression(true));
    }
    ExprPtr e = MakeExpr(ExprKind::kCondExpr, line);
    e->children.push_back(std::move(cond));
    e->children.push_back(std::move(expr1));
    e->children.push_back(std::move(else_expr));
    expr1 = std::move(e);
  }
  return expr1;
}

absl::StatusOr<ExprPtr> Parser::ParseOr() {
  const int line = Current().line;
  ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
  ChainGuard chain(depth_);
  while (SkipName("or")) {
    if (!chain.Add()) return Fail("expression nested too deeply");
    ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
    left = MakeBinary(ExprKind::kOr, line, std::move(left), std::move(right));
  }
  return left;
}

absl::StatusOr<ExprPtr> Parser::ParseAnd() {
  const int line = Current().line;
  ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
  ChainGuard chain(depth_);
  while (SkipName("and")) {
    if (!chain.Add()) return Fail("expression nested too deeply");
    ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
    left = MakeBinary(ExprKind::kAnd, line, std::move(left), std::move(right));
  }
  return left;
}

absl::StatusOr<ExprPtr> Parser::ParseNot() {
  DepthGuard guard(depth_);
  if (!guard.ok()) return Fail("expression nested too deeply");
  const int line = Current().line;
  if (SkipName("not")) {
    ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
    return MakeUnary(ExprKind::kNot, line, std::move(operand));
  }
  return ParseCompare();
}

absl::StatusOr<ExprPtr> Parser::ParseCompare() {
  const int line = Current().line;
  ASSIGN_OR_RETURN(ExprPtr expr, ParseMath1());
  ExprPtr cmp;
  while (true) {
    CompareOp op;
    if (IsOp("==")) {
      op = CompareOp::kEq;
    } else if (IsOp("!=")) {
      op = CompareOp::kNe;
    } else if (IsOp("<")) {
      op = CompareOp::kLt;
    } else if (IsOp("<=")) {
      op = CompareOp::kLe;
    } else if (IsOp(">")) {
      op = CompareOp::kGt;
    } else if (IsOp(">=")) {
      op = CompareOp::kGe;
    } else if (IsName("in")) {
      op = CompareOp::kIn;
    } else if (IsName("not") && Look().type == TokenType::kName && Look().value == "in") {
      op = CompareOp::kNotIn;
      Advance();
    } else {
      break;
    }
    Advance();
    if (cmp == nullptr) {
      cmp = MakeExpr(ExprKind::kCompare, line);
      cmp->children.push_back(std::move(expr));
    }
    ASSIGN_OR_RETURN(ExprPtr operand, ParseMath1());
    cmp->cmp_ops.push_back(op);
    cmp->children.push_back(std::move(operand));
  }
  return cmp != nullptr ? std::move(cmp) : std::move(expr);
}

absl::StatusOr<ExprPtr> Parser::ParseMath1() {
  const int line = Current().line;
  ASSIGN_OR_RETURN(ExprPtr left, ParseConcat());
  ChainGuard chain(depth_);
  while (IsOp("+") || IsOp("-")) {
    if (!chain.Add()) return Fail("expression nested too deeply");
    const BinaryOp op = IsOp("+") ? BinaryOp::kAdd : BinaryOp::kSub;
    Advance();
    ASSIGN_OR_RETURN(ExprPtr right, ParseConcat());
    left = MakeBinary(ExprKind::kBinary, line, std::move(left), std::move(right));
    left->op = op;
  }
  return left;
}

absl::StatusOr<ExprPtr> Parser::ParseConcat() {
  const int line = Current().line;
  ASSIGN_OR_RETURN(ExprPtr first, ParseMath2());
  if (!IsOp("~")) return first;
  ExprPtr e = MakeExpr(ExprKind::kConcat, line);
  e->children.push_back(std::move(first));
  while (SkipOp("~")) {
    ASSIGN_OR_RETURN(ExprPtr next, ParseMath2());
    e->children.push_back(std::move(next));
  }
  return e;
}

absl::StatusOr<ExprPtr> Parser::ParseMath2() {
  const int line = Current().line;
  ASSIGN_OR_RETURN(ExprPtr left, ParsePow());
  ChainGuard chain(depth_);
  while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
    if (!chain.Add()) return Fail("expression nested too deeply");
    const BinaryOp op = IsOp("*")    ? BinaryOp::kMul
                        : IsOp("/")  ? BinaryOp::kDiv
                        : IsOp("//") ? BinaryOp::kFloorDiv
                                     : BinaryOp::kMod;
    Advance();
    ASSIGN_OR_RETURN(ExprPtr right, ParsePow());
    left = MakeBinary(ExprKind::kBinary, line, std::move(left), std::move(right));
    left->op = op;
  }
  return left;
}

absl::StatusOr<ExprPtr> Parser::ParsePow() {
  const int line = Current().line;
  ASSIGN_OR_RETURN(ExprPtr left, ParseUnary(true));
  ChainGuard chain(depth_);
  while (SkipOp("**")) {
    if (!chain.Add()) return Fail("expression nested too deeply");
    ASSIGN_OR_RETURN(ExprPtr right, ParseUnary(true));
    left = MakeBinary(ExprKind::kBinary, line, std::move(left), std::move(right));
    left->op = BinaryOp::kPow;
  }
  return left;
}

absl::StatusOr<ExprPtr> Parser::ParseUnary(bool with_filter) {
  DepthGuard guard(depth_);
  if (!guard.ok()) return Fail("expression nested too deeply");
  const int line = Current().line;
  ExprPtr node;
  if (SkipOp("-")) {
    ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(false));
    node = MakeUnary(ExprKind::kNeg, line, std::move(operand));
  } else if (SkipOp("+")) {
    ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(false));
    node = MakeUnary(ExprKind::kPos, line, std::move(operand));
  } else {
    ASSIGN_OR_RETURN(node, ParsePrimary());
  }
  ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
  if (with_filter) {
    ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
  }
  return node;
}

absl::StatusOr<ExprPtr> Parser::ParsePrimary() {
  DepthGuard guard(depth_);
  if (!guard.ok()) return Fail("expression nested too deeply");
  const Token& token = Current();
  const int line = token.line;
  ExprPtr node;
  switch (token.type) {
    case TokenType::kName: {
      const std::string& v = token.value;
      if (v == "true" || v == "True" || v == "false" || v == "False") {
        node = MakeExpr(ExprKind::kConst, line);
        node->constant = Value::Bool(v == "true" || v == "True");
      } else if (v == "none" || v == "None") {
        node = MakeExpr(ExprKind::kConst, line);
        node->constant = Value::None();
      } else {
        node = MakeExpr(ExprKind::kName, line);
        node->name = v;
      }
      Advance();
      return node;
    }
    case TokenType::kString: {
      std::string buf;
      while (Current().type == TokenType::kString) {
        buf += Current().value;
        Advance();
      }
      node = MakeExpr(ExprKind::kConst, line);
      node->constant = Value::String(std::move(buf));
      return node;
    }
    case TokenType::kInteger:
      node = MakeExpr(ExprKind::kConst, line);
      node->constant = Value::Int(token.int_value);
      Advance();
      return node;
    case TokenType::kFloat:
      node = MakeExpr(ExprKind::kConst, line);
      node->constant = Value::Float(token.float_value);
      Advance();
      return node;
    case TokenType::kOperator:
      if (token.value == "(") {
        Advance();
        ASSIGN_OR_RETURN(node, ParseTuple(true, false, {}, true));
        RETURN_IF_ERROR(ExpectOp(")"));
        return node;
      }
      if (token.value == "[") return ParseList();
      if (token.value == "{") return ParseDict();
      break;
    case TokenType::kText:
    case TokenType::kVariableBegin:
    case TokenType::kVariableEnd:
    case TokenType::kBlockBegin:
    case TokenType::kBlockEnd:
    case TokenType::kEof:
      break;
  }
  return Fail(absl::StrCat("unexpected '", DescribeToken(token), "'"));
}

absl::StatusOr<ExprPtr> Parser::ParseList() {
  const int line = Current().line;
  RETURN_IF_ERROR(ExpectOp("["));
  ExprPtr e = MakeExpr(ExprKind::kList, line);
  while (!IsOp("]")) {
    if (!e->children.empty()) RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp("]")) break;
    ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
    e->children.push_back(std::move(item));
  }
  RETURN_IF_ERROR(ExpectOp("]"));
  return e;
}

absl::StatusOr<ExprPtr> Parser::ParseDict() {
  const int line = Current().line;
  RETURN_IF_ERROR(ExpectOp("{"));
  ExprPtr e = MakeExpr(ExprKind::kDict, line);
  while (!IsOp("}")) {
    if (!e->children.empty()) RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp("}")) break;
    ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
    RETURN_IF_ERROR(ExpectOp(":"));
    ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
    e->children.push_back(std::move(key));
    e->children.push_back(std::move(value));
  }
  RETURN_IF_ERROR(ExpectOp("}"));
  return e;
}

bool Parser::IsTupleEnd(const std::vector<absl::string_view>& extra_end) const {
  const Token& t = Current();
  if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd || IsOp(")")) return true;
  for (absl::string_view name : extra_end) {
    if (t.type == TokenType::kName && t.value == name) return true;
  }
  return false;
}

absl::StatusOr<ExprPtr> Parser::ParseTuple(bool with_condexpr, bool simplified,
                                           const std::vector<absl::string_view>& extra_end,
                                           bool explicit_parentheses) {
  const int line = Current().line;
  std::vector<ExprPtr> args;
  bool is_tuple = false;
  while (true) {
    if (!args.empty()) RETURN_IF_ERROR(ExpectOp(","));
    if (IsTupleEnd(extra_end)) break;
    ExprPtr item;
    if (simplified) {
      ASSIGN_OR_RETURN(item, ParsePrimary());
    } else {
      ASSIGN_OR_RETURN(item, ParseExpression(with_condexpr));
    }
    args.push_back(std::move(item));
    if (IsOp(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!args.empty()) return std::move(args[0]);
    if (!explicit_parentheses) {
      return Fail(absl::StrCat("Expected an expression, got '", DescribeToken(Current()), "'"));
    }
  }
  ExprPtr e = MakeExpr(ExprKind::kTuple, line);
  e->children = std::move(args);
  return e;
}

}  // namespace tessera::jinja::internal
