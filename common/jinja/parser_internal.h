// Parser state shared by the statement and expression halves of the parser
// (parser_stmt.cc, parser_expr.cc). Internal to common/jinja.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/ast.h"
#include "common/jinja/lexer.h"

namespace tessera::jinja::internal {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  // Statements (parser_stmt.cc).
  absl::StatusOr<Body> ParseDocument();

  // Expressions (parser_expr.cc).
  absl::StatusOr<ExprPtr> ParseExpression(bool with_condexpr = true);
  // A bare tuple `a, b` or a single expression. `extra_end` names end a tuple.
  absl::StatusOr<ExprPtr> ParseTuple(bool with_condexpr, bool simplified,
                                     const std::vector<absl::string_view>& extra_end,
                                     bool explicit_parentheses = false);
  // The filter chain after `|` (or inline, as in `{% filter upper %}`), on
  // `node` (may be null for block filters).
  absl::StatusOr<ExprPtr> ParseFilters(ExprPtr node, bool start_inline);
  absl::StatusOr<ExprPtr> ParsePrimary();

 protected:
  const Token& Current() const { return tokens_[pos_]; }
  const Token& Look() const { return tokens_[pos_ + 1 < tokens_.size() ? pos_ + 1 : pos_]; }
  void Advance() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool IsOp(absl::string_view op) const {
    return Current().type == TokenType::kOperator && Current().value == op;
  }
  bool IsName(absl::string_view name) const {
    return Current().type == TokenType::kName && Current().value == name;
  }
  bool SkipOp(absl::string_view op) {
    if (!IsOp(op)) return false;
    Advance();
    return true;
  }
  bool SkipName(absl::string_view name) {
    if (!IsName(name)) return false;
    Advance();
    return true;
  }
  absl::Status Fail(absl::string_view msg) const { return FailAt(Current(), msg); }
  absl::Status FailAt(const Token& token, absl::string_view msg) const;
  absl::Status ExpectOp(absl::string_view op);
  absl::Status ExpectType(TokenType type, absl::string_view what);
  absl::StatusOr<std::string> ExpectName();
  absl::StatusOr<ExprPtr> ParseCallArgs(ExprPtr node, ExprKind kind, std::string name);

 private:
  // Expression precedence levels, loosest first.
  absl::StatusOr<ExprPtr> ParseCondExpr();
  absl::StatusOr<ExprPtr> ParseOr();
  absl::StatusOr<ExprPtr> ParseAnd();
  absl::StatusOr<ExprPtr> ParseNot();
  absl::StatusOr<ExprPtr> ParseCompare();
  absl::StatusOr<ExprPtr> ParseMath1();
  absl::StatusOr<ExprPtr> ParseConcat();
  absl::StatusOr<ExprPtr> ParseMath2();
  absl::StatusOr<ExprPtr> ParsePow();
  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter);
  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseSubscribed();
  absl::StatusOr<ExprPtr> ParseTest(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseList();
  absl::StatusOr<ExprPtr> ParseDict();
  bool IsTupleEnd(const std::vector<absl::string_view>& extra_end) const;

  // Statements.
  // Parses statements until a block tag named in `end_tags`; leaves the stream
  // on that name. At top level (`end_tags` empty) stops at end of template.
  absl::StatusOr<Body> ParseBody(const std::vector<absl::string_view>& end_tags);
  absl::StatusOr<StmtPtr> ParseStatement();
  absl::StatusOr<StmtPtr> ParseIf();
  absl::StatusOr<StmtPtr> ParseFor();
  absl::StatusOr<StmtPtr> ParseSet();
  absl::StatusOr<StmtPtr> ParseMacro();
  absl::StatusOr<StmtPtr> ParseCallBlock();
  absl::StatusOr<StmtPtr> ParseFilterBlock();
  absl::StatusOr<StmtPtr> ParseWith();
  absl::StatusOr<Target> ParseAssignTarget(const std::vector<absl::string_view>& extra_end,
                                           bool with_namespace);
  absl::Status ParseSignature(std::vector<MacroParam>& params);
  // Consumes `end_tag` (the stream is on it) and the block end after it.
  absl::Status EndBlock();

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

// Scope guard counting nesting depth; `ok()` is false past kMaxParseDepth.
class DepthGuard {
 public:
  explicit DepthGuard(int& depth);
  ~DepthGuard() { --depth_; }
  bool ok() const;

 private:
  int& depth_;
};

// Counts the nesting that a loop builds (left-associative operator chains such
// as `a + b + c`, `x.a.b`, `x|f|g`, whose trees are as deep as the chain is
// long) until the enclosing function returns.
class ChainGuard {
 public:
  explicit ChainGuard(int& depth) : depth_(depth) {}
  ~ChainGuard() { depth_ -= added_; }
  // One more level; false past kMaxParseDepth.
  bool Add();

 private:
  int& depth_;
  int added_ = 0;
};

}  // namespace tessera::jinja::internal
