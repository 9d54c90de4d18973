// Chat templates: the Jinja2 `chat_template` of a Hugging Face
// tokenizer_config.json, rendered exactly as transformers'
// apply_chat_template renders it (Jinja2 ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks and loopcontrols; globals raise_exception and
// strftime_now; `tojson` = json.dumps(ensure_ascii=False)).
//
// Parse once, render many: a ChatTemplate is immutable after Parse and its
// const methods are safe to call from any number of threads at once. Templates
// and contexts are untrusted input: parsing and rendering are bounded (nesting
// depth, evaluation steps, output and allocation size, macro call depth) and
// report errors as absl::Status, never by crashing or hanging.
//
// Errors:
// - Parse: INVALID_ARGUMENT "template syntax error at line L, column C: ...".
// - Render: INVALID_ARGUMENT whose message is exactly the argument of the
//   template's raise_exception(msg); INVALID_ARGUMENT "chat template error at
//   line L: ..." for other runtime errors (undefined values used, type errors,
//   ...); RESOURCE_EXHAUSTED "chat template error at line L: ..." when a limit
//   is hit; INVALID_ARGUMENT naming the JSON path for unusable context.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/ast.h"
#include "common/jinja/interpreter.h"

namespace tessera::jinja {

class ChatTemplate {
 public:
  static absl::StatusOr<ChatTemplate> Parse(absl::string_view source, RenderLimits limits = {});

  // Renders with the variables of `context` (a JSON object; absent names are
  // Undefined, JSON null is None). JSON objects become dicts in their key
  // order; pass nlohmann::ordered_json to keep the order the client sent (as
  // Python does). The nlohmann::json overloads see keys sorted.
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& context) const;
  absl::StatusOr<std::string> Render(const nlohmann::json& context) const {
    return Render(nlohmann::ordered_json(context));
  }

  // transformers' apply_chat_template(messages, add_generation_prompt, **extra):
  // variables `messages`, `add_generation_prompt`, `tools` = None,
  // `documents` = None, then every entry of `special_tokens` (e.g. bos_token;
  // JSON null entries are not passed), then `extra` (template kwargs such as
  // enable_thinking; may set tools/documents, may override special tokens, may
  // not set messages or add_generation_prompt).
  absl::StatusOr<std::string> RenderChat(const nlohmann::ordered_json& messages,
                                         bool add_generation_prompt,
                                         const nlohmann::ordered_json& extra,
                                         const nlohmann::ordered_json& special_tokens) const;
  absl::StatusOr<std::string> RenderChat(const nlohmann::json& messages, bool add_generation_prompt,
                                         const nlohmann::json& extra,
                                         const nlohmann::json& special_tokens) const {
    return RenderChat(nlohmann::ordered_json(messages), add_generation_prompt,
                      nlohmann::ordered_json(extra), nlohmann::ordered_json(special_tokens));
  }

 private:
  ChatTemplate(std::shared_ptr<const Body> body, RenderLimits limits)
      : body_(std::move(body)), limits_(limits) {}

  std::shared_ptr<const Body> body_;
  RenderLimits limits_;
};

// The special tokens transformers passes to a chat template, from a parsed
// tokenizer_config.json: bos/eos/unk/sep/pad/cls/mask_token whose value is a
// string or an AddedToken object ({"content": "..."}); others are left out.
nlohmann::json SpecialTokensFromConfig(const nlohmann::json& tokenizer_config);

}  // namespace tessera::jinja
