#include "common/jinja/chat_template.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/json.h"
#include "common/jinja/parser.h"
#include "common/status_macros.h"

namespace tessera::jinja {

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(absl::string_view source, RenderLimits limits) {
  ASSIGN_OR_RETURN(Body body, ParseTemplate(source));
  return ChatTemplate(std::make_shared<const Body>(std::move(body)), limits);
}

namespace {

absl::StatusOr<std::string> RenderWith(const Body& body, const RenderLimits& limits,
                                       std::shared_ptr<Frame> root) {
  Renderer renderer(limits, std::move(root));
  absl::StatusOr<std::string> out = renderer.Render(body);
  if (out.ok() || renderer.raised()) return out;
  const absl::Status& s = out.status();
  return absl::Status(s.code(), absl::StrCat("chat template error at line ", renderer.error_line(),
                                             ": ", s.message()));
}

}  // namespace

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context) const {
  if (!context.is_object())
    return absl::InvalidArgumentError("template context must be a JSON object");
  auto root = std::make_shared<Frame>(nullptr);
  for (const auto& [key, value] : context.items()) {
    ASSIGN_OR_RETURN(Value v, ValueFromJson(value, key));
    root->Set(key, std::move(v));
  }
  return RenderWith(*body_, limits_, std::move(root));
}

absl::StatusOr<std::string> ChatTemplate::RenderChat(
    const nlohmann::ordered_json& messages, bool add_generation_prompt,
    const nlohmann::ordered_json& extra, const nlohmann::ordered_json& special_tokens) const {
  if (!messages.is_array()) return absl::InvalidArgumentError("messages must be a JSON array");
  if (!extra.is_null() && !extra.is_object()) {
    return absl::InvalidArgumentError("chat template kwargs must be a JSON object");
  }
  if (!special_tokens.is_null() && !special_tokens.is_object()) {
    return absl::InvalidArgumentError("special tokens must be a JSON object");
  }
  auto root = std::make_shared<Frame>(nullptr);
  ASSIGN_OR_RETURN(Value msgs, ValueFromJson(messages, "messages"));
  root->Set("messages", std::move(msgs));
  root->Set("add_generation_prompt", Value::Bool(add_generation_prompt));
  root->Set("tools", Value::None());
  root->Set("documents", Value::None());
  if (special_tokens.is_object()) {
    for (const auto& [key, value] : special_tokens.items()) {
      if (value.is_null()) continue;
      ASSIGN_OR_RETURN(Value v, ValueFromJson(value, key));
      root->Set(key, std::move(v));
    }
  }
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) {
      if (key == "messages" || key == "add_generation_prompt") {
        return absl::InvalidArgumentError(
            absl::StrCat("chat template kwarg '", key, "' conflicts with an argument of its own"));
      }
      ASSIGN_OR_RETURN(Value v, ValueFromJson(value, key));
      root->Set(key, std::move(v));
    }
  }
  return RenderWith(*body_, limits_, std::move(root));
}

nlohmann::json SpecialTokensFromConfig(const nlohmann::json& tokenizer_config) {
  nlohmann::json out = nlohmann::json::object();
  if (!tokenizer_config.is_object()) return out;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                          "cls_token", "mask_token"}) {
    auto it = tokenizer_config.find(key);
    if (it == tokenizer_config.end()) continue;
    if (it->is_string()) {
      out[key] = *it;
    } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
      out[key] = (*it)["content"];
    }
  }
  return out;
}

}  // namespace tessera::jinja
