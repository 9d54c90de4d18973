// Statement execution of the Jinja evaluator (see interpreter.h).
#include "common/jinja/interpreter.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/access.h"
#include "common/jinja/objects.h"
#include "common/status_macros.h"

namespace tessera::jinja {

const Value* Frame::Find(absl::string_view name) const {
  for (const Frame* f = this; f != nullptr; f = f->parent_.get()) {
    auto it = f->vars_.find(name);
    if (it != f->vars_.end()) return &it->second;
  }
  return nullptr;
}

Renderer::Renderer(const RenderLimits& limits, std::shared_ptr<Frame> root)
    : limits_(limits), root_(std::move(root)) {}

Renderer::~Renderer() {
  for (const auto& weak : namespaces_) {
    if (std::shared_ptr<Namespace> ns = weak.lock()) ns->Clear();
  }
}

absl::Status Renderer::CheckSize(size_t bytes) const {
  if (bytes > static_cast<size_t>(limits_.max_output_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "a value of ", bytes, " bytes exceeds the limit of ", limits_.max_output_bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status Renderer::ChargeString(size_t bytes) {
  RETURN_IF_ERROR(CheckSize(bytes));
  return Charge(bytes);
}

absl::Status Renderer::Charge(size_t bytes) {
  allocated_ += static_cast<int64_t>(bytes);
  if (allocated_ > limits_.max_allocated_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the template built more than ", limits_.max_allocated_bytes, " bytes of data"));
  }
  return absl::OkStatus();
}

absl::Status Renderer::Step() {
  if (++steps_ > limits_.max_steps) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the template ran more than ", limits_.max_steps, " evaluation steps"));
  }
  return absl::OkStatus();
}

absl::Status Renderer::EnterCall() {
  if (++call_depth_ > limits_.max_call_depth) {
    --call_depth_;
    return absl::ResourceExhaustedError(
        absl::StrCat("macro calls nested deeper than ", limits_.max_call_depth));
  }
  return absl::OkStatus();
}

absl::Status Renderer::Write(absl::string_view text) {
  if (out_->size() + text.size() > static_cast<size_t>(limits_.max_output_bytes)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the rendered text exceeds ", limits_.max_output_bytes, " bytes"));
  }
  out_->append(text.data(), text.size());
  return absl::OkStatus();
}

absl::StatusOr<std::string> Renderer::Render(const Body& body) { return Capture(body, root_); }

absl::StatusOr<std::string> Renderer::Capture(const Body& body,
                                              const std::shared_ptr<Frame>& frame) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  const int saved_loop_depth = loop_depth_;
  loop_depth_ = 0;
  auto flow = ExecBody(body, frame);
  out_ = saved;
  loop_depth_ = saved_loop_depth;
  if (!flow.ok()) return flow.status();
  if (saved != nullptr) RETURN_IF_ERROR(Charge(buffer.size()));
  return buffer;
}

absl::StatusOr<Renderer::Flow> Renderer::ExecBody(const Body& body,
                                                  const std::shared_ptr<Frame>& frame) {
  for (const StmtPtr& stmt : body) {
    ASSIGN_OR_RETURN(Flow flow, Exec(*stmt, frame));
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

absl::Status Renderer::EnterDepth() {
  if (++depth_ > limits_.max_depth) {
    --depth_;
    return absl::ResourceExhaustedError(
        absl::StrCat("the template nests evaluation deeper than ", limits_.max_depth, " levels"));
  }
  return absl::OkStatus();
}

absl::Status Renderer::ChargeValue(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString:
      return ChargeString(v.str().size());
    case Value::Kind::kList:
      return Charge(v.items().size() * sizeof(Value));
    case Value::Kind::kIterator:
      return Charge(v.iterator().items.size() * sizeof(Value));
    case Value::Kind::kDict:
      return Charge(v.dict().size() * 2 * sizeof(Value));
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kObject:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::StatusOr<Renderer::Flow> Renderer::Exec(const Stmt& stmt,
                                              const std::shared_ptr<Frame>& frame) {
  RETURN_IF_ERROR(EnterDepth());
  auto flow = ExecInner(stmt, frame);
  --depth_;
  return flow;
}

absl::StatusOr<Renderer::Flow> Renderer::ExecInner(const Stmt& stmt,
                                                   const std::shared_ptr<Frame>& frame) {
  RETURN_IF_ERROR(Step());
  line_ = stmt.line;
  switch (stmt.kind) {
    case StmtKind::kText:
      RETURN_IF_ERROR(Write(stmt.text));
      return Flow::kNormal;
    case StmtKind::kOutput: {
      ASSIGN_OR_RETURN(Value v, Eval(*stmt.expr, frame));
      if (v.is_string()) {
        RETURN_IF_ERROR(Write(v.str()));
      } else {
        RETURN_IF_ERROR(Write(v.Str()));
      }
      return Flow::kNormal;
    }
    case StmtKind::kIf:
      for (const auto& [cond, body] : stmt.branches) {
        bool take = cond == nullptr;
        if (!take) {
          ASSIGN_OR_RETURN(Value v, Eval(*cond, frame));
          take = v.Truthy();
        }
        if (take) return ExecBody(body, frame);
      }
      return Flow::kNormal;
    case StmtKind::kFor:
      return ExecFor(stmt, frame);
    case StmtKind::kSet: {
      ASSIGN_OR_RETURN(Value v, Eval(*stmt.expr, frame));
      RETURN_IF_ERROR(ExecSet(stmt.target, std::move(v), frame));
      return Flow::kNormal;
    }
    case StmtKind::kSetBlock: {
      ASSIGN_OR_RETURN(std::string text, Capture(stmt.body, frame));
      Value v = Value::String(std::move(text));
      if (stmt.expr != nullptr) {
        ASSIGN_OR_RETURN(v, ApplyFilterChain(*stmt.expr, std::move(v), frame));
      }
      RETURN_IF_ERROR(ExecSet(stmt.target, std::move(v), frame));
      return Flow::kNormal;
    }
    case StmtKind::kMacro: {
      auto macro = std::make_shared<Macro>(stmt.text, &stmt.params, &stmt.body,
                                           frame == root_ ? nullptr : frame, Value());
      frame->Set(stmt.text, Value::FromObject(std::move(macro)));
      return Flow::kNormal;
    }
    case StmtKind::kCallBlock: {
      const Expr& call = *stmt.expr;
      auto caller = std::make_shared<Macro>("caller", &stmt.params, &stmt.body, frame, Value());
      ASSIGN_OR_RETURN(Value callee, Eval(*call.children[0], frame));
      ASSIGN_OR_RETURN(CallArgs args, EvalArgs(call, 1, frame));
      args.kwargs.emplace_back("caller", Value::FromObject(std::move(caller)));
      ASSIGN_OR_RETURN(Value v, CallValue(callee, std::move(args)));
      RETURN_IF_ERROR(Write(v.Str()));
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      ASSIGN_OR_RETURN(std::string text, Capture(stmt.body, frame));
      ASSIGN_OR_RETURN(Value v,
                       ApplyFilterChain(*stmt.expr, Value::String(std::move(text)), frame));
      RETURN_IF_ERROR(Write(v.Str()));
      return Flow::kNormal;
    }
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
    case StmtKind::kScope: {
      if (!stmt.new_scope) return ExecBody(stmt.body, frame);
      auto inner = std::make_shared<Frame>(frame);
      for (const auto& [target, value] : stmt.assignments) {
        ASSIGN_OR_RETURN(Value v, Eval(*value, frame));
        RETURN_IF_ERROR(AssignTarget(target, v, *inner));
      }
      return ExecBody(stmt.body, inner);
    }
  }
  return Flow::kNormal;
}

absl::Status AssignTarget(const Target& target, const Value& value, Frame& frame) {
  if (!target.tuple) {
    frame.Set(target.names[0], value);
    return absl::OkStatus();
  }
  if (value.is_undefined()) return absl::InvalidArgumentError(value.UndefinedMessage());
  auto iterated = Iterate(value);
  if (!iterated.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot unpack non-iterable ", value.TypeName(), " object"));
  }
  std::vector<Value> parts = *std::move(iterated);
  const size_t want = target.names.size();
  if (parts.size() < want) {
    return absl::InvalidArgumentError(
        absl::StrCat("not enough values to unpack (expected ", want, ", got ", parts.size(), ")"));
  }
  if (parts.size() > want) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many values to unpack (expected ", want, ")"));
  }
  for (size_t i = 0; i < want; ++i) frame.Set(target.names[i], parts[i]);
  return absl::OkStatus();
}

absl::Status Renderer::ExecSet(const Target& target, Value value,
                               const std::shared_ptr<Frame>& frame) {
  if (target.attr.empty()) return AssignTarget(target, value, *frame);
  const Value* ns = frame->Find(target.names[0]);
  Namespace* n = nullptr;
  if (ns != nullptr && ns->is_object()) n = dynamic_cast<Namespace*>(&ns->object());
  if (n == nullptr) {
    return absl::InvalidArgumentError("cannot assign attribute on non-namespace object");
  }
  n->SetAttr(target.attr, std::move(value));
  return absl::OkStatus();
}

absl::StatusOr<Renderer::Flow> Renderer::ExecFor(const Stmt& stmt,
                                                 const std::shared_ptr<Frame>& frame) {
  ASSIGN_OR_RETURN(Value iterable, Eval(*stmt.expr, frame));
  std::shared_ptr<const std::vector<Value>> items;
  if (iterable.is_list() && stmt.filter == nullptr) {
    // Iterate the list in place (aliasing its shared storage), no copy.
    items = std::shared_ptr<const std::vector<Value>>(iterable.shared_list(),
                                                      &iterable.shared_list()->items);
  } else {
    ASSIGN_OR_RETURN(std::vector<Value> all, Iterate(iterable));
    RETURN_IF_ERROR(Charge(all.size() * sizeof(Value)));
    auto kept = std::make_shared<std::vector<Value>>();
    if (stmt.filter == nullptr) {
      *kept = std::move(all);
    } else {
      for (Value& item : all) {
        RETURN_IF_ERROR(Step());
        auto scope = std::make_shared<Frame>(frame);
        RETURN_IF_ERROR(AssignTarget(stmt.target, item, *scope));
        ASSIGN_OR_RETURN(Value keep, Eval(*stmt.filter, scope));
        if (keep.Truthy()) kept->push_back(std::move(item));
      }
    }
    items = std::move(kept);
  }
  if (items->empty()) return ExecBody(stmt.else_body, frame);
  auto loop = std::make_shared<LoopObject>(items, 1);
  const Value loop_value = Value::FromObject(loop);
  ++loop_depth_;
  for (size_t i = 0; i < items->size(); ++i) {
    RETURN_IF_ERROR(Step());
    loop->set_index(i);
    // Each iteration gets a fresh scope: `set` inside a loop body does not
    // survive to the next iteration or leak out (Jinja2 semantics).
    auto scope = std::make_shared<Frame>(frame);
    scope->Set("loop", loop_value);
    if (absl::Status s = AssignTarget(stmt.target, (*items)[i], *scope); !s.ok()) {
      --loop_depth_;
      return s;
    }
    auto flow = ExecBody(stmt.body, scope);
    if (!flow.ok()) {
      --loop_depth_;
      return flow.status();
    }
    if (*flow == Flow::kBreak) break;
  }
  --loop_depth_;
  return Flow::kNormal;
}

absl::StatusOr<Value> Renderer::ApplyFilterChain(const Expr& chain, Value input,
                                                 const std::shared_ptr<Frame>& frame) {
  if (chain.children[0] != nullptr) {
    ASSIGN_OR_RETURN(input, ApplyFilterChain(*chain.children[0], std::move(input), frame));
  }
  ASSIGN_OR_RETURN(CallArgs args, EvalArgs(chain, 1, frame));
  return CallFilter(chain.name, input, std::move(args));
}

}  // namespace tessera::jinja
