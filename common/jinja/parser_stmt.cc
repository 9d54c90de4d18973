// Statement half of the Jinja parser (see parser_internal.h) and the public
// ParseTemplate entry point.
#include "absl/strings/str_cat.h"
#include "common/jinja/parser.h"
#include "common/jinja/parser_internal.h"
#include "common/status_macros.h"

namespace tessera::jinja {
namespace internal {
namespace {

StmtPtr MakeStmt(StmtKind kind, int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->line = line;
  return s;
}

std::string DescribeEnds(const std::vector<absl::string_view>& tags) {
  std::string out;
  for (size_t i = 0; i < tags.size(); ++i) {
    if (i > 0) out += " or ";
    absl::StrAppend(&out, "'", tags[i], "'");
  }
  return out;
}

}  // namespace

absl::StatusOr<Body> Parser::ParseDocument() {
  ASSIGN_OR_RETURN(Body body, ParseBody({}));
  if (Current().type != TokenType::kEof) return Fail("unexpected content after the template");
  return body;
}

absl::StatusOr<Body> Parser::ParseBody(const std::vector<absl::string_view>& end_tags) {
  DepthGuard guard(depth_);
  if (!guard.ok()) return Fail("blocks nested too deeply");
  Body body;
  while (true) {
    const Token& token = Current();
    switch (token.type) {
      case TokenType::kText: {
        StmtPtr s = MakeStmt(StmtKind::kText, token.line);
        s->text = token.value;
        body.push_back(std::move(s));
        Advance();
        break;
      }
      case TokenType::kVariableBegin: {
        StmtPtr s = MakeStmt(StmtKind::kOutput, token.line);
        Advance();
        ASSIGN_OR_RETURN(s->expr, ParseTuple(true, false, {}));
        RETURN_IF_ERROR(ExpectType(TokenType::kVariableEnd, "end of print statement"));
        body.push_back(std::move(s));
        break;
      }
      case TokenType::kBlockBegin: {
        Advance();
        for (absl::string_view tag : end_tags) {
          if (IsName(tag)) return body;
        }
        ASSIGN_OR_RETURN(StmtPtr s, ParseStatement());
        RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
        body.push_back(std::move(s));
        break;
      }
      case TokenType::kEof:
        if (end_tags.empty()) return body;
        return Fail(
            absl::StrCat("Unexpected end of template. Jinja was looking for the following tags: ",
                         DescribeEnds(end_tags), "."));
      case TokenType::kVariableEnd:
      case TokenType::kBlockEnd:
      case TokenType::kName:
      case TokenType::kString:
      case TokenType::kInteger:
      case TokenType::kFloat:
      case TokenType::kOperator:
        return Fail(absl::StrCat("unexpected '", DescribeToken(token), "'"));
    }
  }
}

absl::StatusOr<StmtPtr> Parser::ParseStatement() {
  const Token& token = Current();
  if (token.type != TokenType::kName) return Fail("tag name expected");
  const std::string tag = token.value;
  if (tag == "if") return ParseIf();
  if (tag == "for") return ParseFor();
  if (tag == "set") return ParseSet();
  if (tag == "macro") return ParseMacro();
  if (tag == "call") return ParseCallBlock();
  if (tag == "filter") return ParseFilterBlock();
  if (tag == "with") return ParseWith();
  if (tag == "break" || tag == "continue") {
    if (loop_depth_ == 0) return Fail(absl::StrCat("'", tag, "' outside of a loop"));
    Advance();
    return MakeStmt(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, token.line);
  }
  if (tag == "generation") {  // transformers' assistant-mask extension: renders its body
    StmtPtr s = MakeStmt(StmtKind::kScope, token.line);
    Advance();
    RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
    ASSIGN_OR_RETURN(s->body, ParseBody({"endgeneration"}));
    RETURN_IF_ERROR(EndBlock());
    return s;
  }
  return Fail(absl::StrCat("Encountered unknown tag '", tag, "'."));
}

absl::Status Parser::EndBlock() {
  Advance();  // the end tag's name
  return absl::OkStatus();
}

absl::StatusOr<StmtPtr> Parser::ParseIf() {
  StmtPtr s = MakeStmt(StmtKind::kIf, Current().line);
  Advance();  // 'if'
  while (true) {
    ASSIGN_OR_RETURN(ExprPtr cond, ParseTuple(false, false, {}));
    RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
    ASSIGN_OR_RETURN(Body body, ParseBody({"elif", "else", "endif"}));
    s->branches.emplace_back(std::move(cond), std::move(body));
    if (SkipName("elif")) continue;
    if (SkipName("else")) {
      RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
      ASSIGN_OR_RETURN(Body else_body, ParseBody({"endif"}));
      s->branches.emplace_back(nullptr, std::move(else_body));
    }
    RETURN_IF_ERROR(EndBlock());
    return s;
  }
}

absl::StatusOr<StmtPtr> Parser::ParseFor() {
  StmtPtr s = MakeStmt(StmtKind::kFor, Current().line);
  Advance();  // 'for'
  ASSIGN_OR_RETURN(s->target, ParseAssignTarget({"in"}, false));
  if (!SkipName("in")) {
    return Fail(absl::StrCat("expected token 'in', got '", DescribeToken(Current()), "'"));
  }
  ASSIGN_OR_RETURN(s->expr, ParseTuple(false, false, {"recursive"}));
  if (SkipName("if")) {
    ASSIGN_OR_RETURN(s->filter, ParseExpression(true));
  }
  if (IsName("recursive")) return Fail("recursive loops are not supported");
  RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
  ++loop_depth_;
  auto body = ParseBody({"endfor", "else"});
  --loop_depth_;
  if (!body.ok()) return body.status();
  s->body = *std::move(body);
  if (SkipName("else")) {
    RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
    ASSIGN_OR_RETURN(s->else_body, ParseBody({"endfor"}));
  }
  RETURN_IF_ERROR(EndBlock());
  return s;
}

absl::StatusOr<Target> Parser::ParseAssignTarget(const std::vector<absl::string_view>& extra_end,
                                                 bool with_namespace) {
  Target target;
  if (with_namespace && Current().type == TokenType::kName && Look().type == TokenType::kOperator &&
      Look().value == ".") {
    target.names.push_back(Current().value);
    Advance();
    Advance();
    ASSIGN_OR_RETURN(target.attr, ExpectName());
    return target;
  }
  const Token start = Current();
  ASSIGN_OR_RETURN(ExprPtr e, ParseTuple(true, true, extra_end));
  auto add_name = [&](const Expr& n) -> absl::Status {
    if (n.kind != ExprKind::kName) return FailAt(start, "can't assign to this expression");
    target.names.push_back(n.name);
    return absl::OkStatus();
  };
  if (e->kind == ExprKind::kTuple) {
    target.tuple = true;
    for (const auto& child : e->children) RETURN_IF_ERROR(add_name(*child));
  } else {
    RETURN_IF_ERROR(add_name(*e));
  }
  return target;
}

absl::StatusOr<StmtPtr> Parser::ParseSet() {
  StmtPtr s = MakeStmt(StmtKind::kSet, Current().line);
  Advance();  // 'set'
  ASSIGN_OR_RETURN(s->target, ParseAssignTarget({}, true));
  if (SkipOp("=")) {
    ASSIGN_OR_RETURN(s->expr, ParseTuple(true, false, {}));
    return s;
  }
  s->kind = StmtKind::kSetBlock;
  if (IsOp("|")) {
    ASSIGN_OR_RETURN(s->expr, ParseFilters(nullptr, false));
  }
  RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
  ASSIGN_OR_RETURN(s->body, ParseBody({"endset"}));
  RETURN_IF_ERROR(EndBlock());
  return s;
}

absl::Status Parser::ParseSignature(std::vector<MacroParam>& params) {
  RETURN_IF_ERROR(ExpectOp("("));
  while (!IsOp(")")) {
    if (!params.empty()) RETURN_IF_ERROR(ExpectOp(","));
    MacroParam p;
    ASSIGN_OR_RETURN(p.name, ExpectName());
    if (SkipOp("=")) {
      ASSIGN_OR_RETURN(p.default_value, ParseExpression(true));
    } else if (!params.empty() && params.back().default_value != nullptr) {
      return Fail("non-default argument follows default argument");
    }
    params.push_back(std::move(p));
  }
  return ExpectOp(")");
}

absl::StatusOr<StmtPtr> Parser::ParseMacro() {
  StmtPtr s = MakeStmt(StmtKind::kMacro, Current().line);
  Advance();  // 'macro'
  ASSIGN_OR_RETURN(s->text, ExpectName());
  RETURN_IF_ERROR(ParseSignature(s->params));
  RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
  const int saved_loop_depth = loop_depth_;
  loop_depth_ = 0;
  auto body = ParseBody({"endmacro"});
  loop_depth_ = saved_loop_depth;
  if (!body.ok()) return body.status();
  s->body = *std::move(body);
  RETURN_IF_ERROR(EndBlock());
  if (Current().type == TokenType::kName && Current().value == s->text) Advance();
  return s;
}

absl::StatusOr<StmtPtr> Parser::ParseCallBlock() {
  StmtPtr s = MakeStmt(StmtKind::kCallBlock, Current().line);
  Advance();  // 'call'
  if (IsOp("(")) RETURN_IF_ERROR(ParseSignature(s->params));
  ASSIGN_OR_RETURN(s->expr, ParseExpression(true));
  if (s->expr->kind != ExprKind::kCall) return Fail("expected call");
  RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
  ASSIGN_OR_RETURN(s->body, ParseBody({"endcall"}));
  RETURN_IF_ERROR(EndBlock());
  return s;
}

absl::StatusOr<StmtPtr> Parser::ParseFilterBlock() {
  StmtPtr s = MakeStmt(StmtKind::kFilterBlock, Current().line);
  Advance();  // 'filter'
  ASSIGN_OR_RETURN(s->expr, ParseFilters(nullptr, true));
  RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
  ASSIGN_OR_RETURN(s->body, ParseBody({"endfilter"}));
  RETURN_IF_ERROR(EndBlock());
  return s;
}

absl::StatusOr<StmtPtr> Parser::ParseWith() {
  StmtPtr s = MakeStmt(StmtKind::kScope, Current().line);
  s->new_scope = true;
  Advance();  // 'with'
  while (Current().type != TokenType::kBlockEnd) {
    if (!s->assignments.empty()) RETURN_IF_ERROR(ExpectOp(","));
    ASSIGN_OR_RETURN(Target target, ParseAssignTarget({}, false));
    RETURN_IF_ERROR(ExpectOp("="));
    ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
    s->assignments.emplace_back(std::move(target), std::move(value));
  }
  RETURN_IF_ERROR(ExpectType(TokenType::kBlockEnd, "end of statement block"));
  ASSIGN_OR_RETURN(s->body, ParseBody({"endwith"}));
  RETURN_IF_ERROR(EndBlock());
  return s;
}

}  // namespace internal

absl::StatusOr<Body> ParseTemplate(absl::string_view source) {
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source));
  internal::Parser parser(std::move(tokens));
  return parser.ParseDocument();
}

}  // namespace tessera::jinja
