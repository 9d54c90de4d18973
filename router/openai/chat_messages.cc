// ParseChatPrompt (request.h): OpenAI chat messages -> v1::ChatPrompt.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "router/openai/json_fields.h"
#include "router/openai/request.h"

namespace tessera::router::openai {
namespace {

using internal::Fail;
using internal::Find;
using internal::OrderedJson;
using internal::TypeName;

// The text of one content part, or nullopt for a text part without text
// (vLLM skips those). Media parts are a 400: Tessera serves text only.
std::optional<std::string> PartText(const OrderedJson& part, const std::string& where) {
  if (part.is_string()) return part.get<std::string>();
  if (!part.is_object()) {
    Fail(where, absl::StrCat("`", where, "` must be a string or an object, got ", TypeName(part)));
  }
  const OrderedJson* type = Find(part, "type");
  if (type == nullptr || !type->is_string()) {
    Fail(where + ".type", absl::StrCat("`", where, ".type` must be a string such as \"text\""));
  }
  const std::string t = type->get<std::string>();
  // vLLM's text-like part types and the field holding their text.
  const char* field = nullptr;
  if (t == "text" || t == "input_text" || t == "output_text") field = "text";
  if (t == "refusal") field = "refusal";
  if (t == "thinking") field = "thinking";
  if (field == nullptr) {
    Fail(where + ".type",
         absl::StrCat("`", where, ".type` \"", t,
                      "\" is not supported: this server serves text only (content parts of "
                      "type \"text\")"));
  }
  const OrderedJson* text = Find(part, field);
  if (text == nullptr) return std::nullopt;
  if (!text->is_string()) {
    Fail(absl::StrCat(where, ".", field),
         absl::StrCat("`", where, ".", field, "` must be a string, got ", TypeName(*text)));
  }
  return text->get<std::string>();
}

std::string ContentText(const OrderedJson& content, const std::string& where) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    Fail(where, absl::StrCat("`", where,
                             "` must be a string, an array of content parts or null, "
                             "got ",
                             TypeName(content)));
  }
  std::vector<std::string> texts;
  for (size_t j = 0; j < content.size(); ++j) {
    std::optional<std::string> text = PartText(content[j], absl::StrCat(where, "[", j, "]"));
    if (text.has_value()) texts.push_back(*std::move(text));
  }
  return absl::StrJoin(texts, "\n");
}

// An assistant's tool_calls[*].function.arguments given as a JSON string
// holding an object become that object (vLLM's _postprocess_messages).
void ParseToolCallArguments(OrderedJson& tool_calls) {
  if (!tool_calls.is_array()) return;
  for (OrderedJson& call : tool_calls) {
    if (!call.is_object()) continue;
    auto function = call.find("function");
    if (function == call.end() || !function->is_object()) continue;
    auto args = function->find("arguments");
    if (args == function->end() || !args->is_string()) continue;
    OrderedJson parsed = OrderedJson::parse(args->get<std::string>(), nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) *args = std::move(parsed);
  }
}

v1::ChatMessage ParseMessage(const OrderedJson& m, size_t i) {
  const std::string where = absl::StrCat("messages[", i, "]");
  if (!m.is_object()) {
    Fail(where, absl::StrCat("`", where, "` must be an object, got ", TypeName(m)));
  }
  v1::ChatMessage out;
  const OrderedJson* role = Find(m, "role");
  if (role == nullptr || !role->is_string()) {
    Fail(where + ".role", absl::StrCat("`", where, ".role` must be a string such as \"user\""));
  }
  out.set_role(role->get<std::string>());
  auto content = m.find("content");
  if (content != m.end()) out.set_content(ContentText(*content, where + ".content"));
  OrderedJson fields = OrderedJson::object();
  for (const auto& [key, value] : m.items()) {
    // Null fields are left out, as vLLM does ("tool_calls": null is no calls).
    if (key == "role" || key == "content" || value.is_null()) continue;
    if (key == "name" || key == "reasoning_content") {
      if (!value.is_string()) {
        Fail(absl::StrCat(where, ".", key),
             absl::StrCat("`", where, ".", key, "` must be a string, got ", TypeName(value)));
      }
      if (key == "name") out.set_name(value.get<std::string>());
      if (key == "reasoning_content") out.set_reasoning_content(value.get<std::string>());
      continue;
    }
    fields[key] = value;
  }
  if (out.role() == "assistant" && fields.contains("tool_calls")) {
    ParseToolCallArguments(fields["tool_calls"]);
  }
  if (!fields.empty()) out.set_fields_json(internal::Dump(fields));
  return out;
}

}  // namespace

ApiOr<v1::ChatPrompt> ParseChatPrompt(const OrderedJson& body) {
  return internal::Guard<v1::ChatPrompt>([&]() -> v1::ChatPrompt {
    v1::ChatPrompt chat;
    const OrderedJson* messages = Find(body, "messages");
    if (messages == nullptr || !messages->is_array() || messages->empty()) {
      Fail("messages", "`messages` must be a non-empty array of chat messages");
    }
    for (size_t i = 0; i < messages->size(); ++i) {
      *chat.add_messages() = ParseMessage((*messages)[i], i);
    }
    if (std::optional<bool> add = internal::GetBool(body, "add_generation_prompt")) {
      chat.set_add_generation_prompt(*add);
    }
    if (internal::GetBool(body, "continue_final_message").value_or(false)) {
      Fail("continue_final_message",
           "`continue_final_message` is not supported by this server; send the final "
           "assistant message as part of a completions prompt instead");
    }
    if (const OrderedJson* kwargs = Find(body, "chat_template_kwargs")) {
      if (!kwargs->is_object()) {
        Fail("chat_template_kwargs",
             absl::StrCat("`chat_template_kwargs` must be an object, got ", TypeName(*kwargs)));
      }
      if (!kwargs->empty()) chat.set_chat_template_kwargs_json(internal::Dump(*kwargs));
    }
    return chat;
  });
}

}  // namespace tessera::router::openai
