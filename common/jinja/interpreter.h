// The Jinja evaluator: executes a parsed template against a context.
//
// A Renderer holds the state of one render (scopes, output, budgets) and is
// used by one thread for one render; the syntax tree it runs is shared and
// never modified. All limits are enforced here so that an untrusted template
// cannot crash, hang or exhaust memory: output size, bytes of strings built,
// evaluation steps (loop iterations and expression nodes), call depth.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/ast.h"
#include "common/jinja/value.h"

namespace tessera::jinja {

struct RenderLimits {
  int64_t max_output_bytes = 16 << 20;      // rendered text
  int64_t max_allocated_bytes = 128 << 20;  // all strings/lists built during a render
  int64_t max_steps = 5'000'000;            // expression nodes + loop iterations
  int max_call_depth = 100;                 // nested macro calls
  int max_depth = 600;  // nested evaluation: expressions, blocks and macro calls together
};

// A variable scope. `parent` is searched when a name is not set here.
class Namespace;

class Frame {
 public:
  explicit Frame(std::shared_ptr<Frame> parent) : parent_(std::move(parent)) {}
  const Value* Find(absl::string_view name) const;
  void Set(std::string name, Value value) { vars_[std::move(name)] = std::move(value); }

 private:
  absl::flat_hash_map<std::string, Value> vars_;
  std::shared_ptr<Frame> parent_;
};

class Renderer {
 public:
  Renderer(const RenderLimits& limits, std::shared_ptr<Frame> root);
  // Clears the namespaces created during the render (see TrackNamespace).
  ~Renderer();
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  // Renders `body` in the root scope. On error, `raised()` tells whether the
  // template called raise_exception (the status message is then exactly its
  // argument) and `error_line()` where evaluation was.
  absl::StatusOr<std::string> Render(const Body& body);
  bool raised() const { return raised_; }
  int error_line() const { return line_; }

  // --- for builtins, macros and objects ---
  const std::shared_ptr<Frame>& root() const { return root_; }
  absl::StatusOr<Value> Eval(const Expr& expr, const std::shared_ptr<Frame>& frame);
  // Renders `body` in `frame` and returns the text it produced.
  absl::StatusOr<std::string> Capture(const Body& body, const std::shared_ptr<Frame>& frame);
  absl::StatusOr<Value> CallValue(const Value& callee, CallArgs args);
  absl::StatusOr<Value> CallFilter(absl::string_view name, const Value& input, CallArgs args);
  absl::StatusOr<bool> CallTest(absl::string_view name, const Value& input, CallArgs args);
  // Accounts `bytes` of newly built data against max_allocated_bytes.
  absl::Status Charge(size_t bytes);
  // Charge() for a new string, which also may not exceed max_output_bytes.
  absl::Status ChargeString(size_t bytes);
  absl::Status Step();
  // Fails when one value of `bytes` would exceed max_output_bytes.
  absl::Status CheckSize(size_t bytes) const;
  // Registers a namespace() created during this render, to be cleared when the
  // render ends (namespaces are the only mutable values, so only they can form
  // reference cycles).
  void TrackNamespace(const std::shared_ptr<Namespace>& ns) { namespaces_.push_back(ns); }
  // Marks the error being returned as the template's own raise_exception.
  void MarkRaised() { raised_ = true; }
  // Enters/leaves a macro call (call depth limit).
  absl::Status EnterCall();
  void LeaveCall() { --call_depth_; }

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  absl::StatusOr<Flow> ExecBody(const Body& body, const std::shared_ptr<Frame>& frame);
  absl::StatusOr<Flow> Exec(const Stmt& stmt, const std::shared_ptr<Frame>& frame);
  absl::StatusOr<Flow> ExecInner(const Stmt& stmt, const std::shared_ptr<Frame>& frame);
  absl::StatusOr<Value> EvalInner(const Expr& expr, const std::shared_ptr<Frame>& frame);
  // Enters one level of evaluation nesting (max_depth); LeaveDepth undoes it.
  absl::Status EnterDepth();
  // Charges the size of a value a builtin built (strings, lists, iterators).
  absl::Status ChargeValue(const Value& v);
  absl::StatusOr<Flow> ExecFor(const Stmt& stmt, const std::shared_ptr<Frame>& frame);
  absl::Status ExecSet(const Target& target, Value value, const std::shared_ptr<Frame>& frame);
  absl::StatusOr<Value> ApplyFilterChain(const Expr& chain, Value input,
                                         const std::shared_ptr<Frame>& frame);
  absl::StatusOr<CallArgs> EvalArgs(const Expr& expr, size_t first,
                                    const std::shared_ptr<Frame>& frame);
  absl::StatusOr<Value> EvalCompare(const Expr& expr, const std::shared_ptr<Frame>& frame);
  absl::Status Write(absl::string_view text);

  const RenderLimits limits_;
  std::shared_ptr<Frame> root_;
  std::string* out_ = nullptr;
  int64_t steps_ = 0;
  int64_t allocated_ = 0;
  int call_depth_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  int line_ = 0;
  bool raised_ = false;
  std::vector<std::weak_ptr<Namespace>> namespaces_;
};

// Binds a target (name, tuple of names) in `frame`, unpacking like Python.
absl::Status AssignTarget(const Target& target, const Value& value, Frame& frame);

}  // namespace tessera::jinja
