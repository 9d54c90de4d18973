#include "common/model_text.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace tessera {
namespace {

constexpr char kTokenizerJson[] = "tokenizer.json";
constexpr char kTokenizerConfigJson[] = "tokenizer_config.json";
constexpr char kGenerationConfigJson[] = "generation_config.json";
constexpr char kChatTemplateJinja[] = "chat_template.jinja";

absl::StatusOr<std::string> ReadFile(absl::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("reading ", path, " failed"));
  return std::move(out).str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const ModelText>> ModelText::Load(
    TokenizerFiles files, std::optional<std::string> chat_template_override,
    int32_t byte_vocab_size) {
  const bool overridden = chat_template_override.has_value();
  // The override is the model's chat_template.jinja (which transformers
  // prefers to the config's template): it is served and hashed with the rest.
  if (overridden) files.chat_template_jinja = std::move(chat_template_override);
  ASSIGN_OR_RETURN(LoadedTokenizer loaded, LoadTokenizer(files, byte_vocab_size));
  std::shared_ptr<ModelText> text(new ModelText());
  text->tokenizer_ = std::move(loaded.tokenizer);
  text->info_ = std::move(loaded.info);
  const bool no_files =
      !files.tokenizer_json.has_value() && !files.tokenizer_config_json.has_value() &&
      !files.generation_config_json.has_value() && !files.chat_template_jinja.has_value();
  // The plain byte tokenizer has nothing to serve: its hash is empty.
  text->hash_ = no_files ? std::string() : text->info_.hash;
  text->special_tokens_ = nlohmann::ordered_json::object();
  if (files.tokenizer_config_json.has_value()) {
    // LoadTokenizer has already refused a config that does not parse.
    const nlohmann::json config =
        nlohmann::json::parse(*files.tokenizer_config_json, nullptr, /*allow_exceptions=*/false);
    if (config.is_object()) {
      text->special_tokens_ = nlohmann::ordered_json(jinja::SpecialTokensFromConfig(config));
    }
  }
  if (!text->info_.chat_template.empty()) {
    absl::StatusOr<jinja::ChatTemplate> parsed =
        jinja::ChatTemplate::Parse(text->info_.chat_template);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          overridden
              ? "--chat-template"
              : (files.chat_template_jinja.has_value() ? "chat_template.jinja"
                                                       : "tokenizer_config.json chat_template"),
          ": ", parsed.status().message()));
    }
    text->chat_template_ = *std::move(parsed);
  }
  text->files_ = std::move(files);
  return std::shared_ptr<const ModelText>(std::move(text));
}

absl::StatusOr<std::shared_ptr<const ModelText>> ModelText::LoadFromDir(
    absl::string_view tokenizer_dir, absl::string_view chat_template_file,
    int32_t byte_vocab_size) {
  TokenizerFiles files;
  if (!tokenizer_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(std::string(tokenizer_dir), ec)) {
      return absl::NotFoundError("no such directory");
    }
    ASSIGN_OR_RETURN(files, TokenizerFiles::ReadDir(tokenizer_dir));
  }
  std::optional<std::string> chat_template;
  if (!chat_template_file.empty()) {
    absl::StatusOr<std::string> t = ReadFile(chat_template_file);
    if (!t.ok()) {
      return absl::Status(t.status().code(),
                          absl::StrCat("--chat-template: ", t.status().message()));
    }
    chat_template = *std::move(t);
  }
  return Load(std::move(files), std::move(chat_template), byte_vocab_size);
}

void ModelText::ToProto(v1::GetTokenizerResponse* response) const {
  auto add = [response](const char* name, const std::optional<std::string>& content) {
    if (!content.has_value()) return;
    v1::TokenizerFile* f = response->add_files();
    f->set_name(name);
    f->set_content(*content);
  };
  add(kTokenizerJson, files_.tokenizer_json);
  add(kTokenizerConfigJson, files_.tokenizer_config_json);
  add(kGenerationConfigJson, files_.generation_config_json);
  add(kChatTemplateJinja, files_.chat_template_jinja);
  response->set_tokenizer_hash(hash_);
}

absl::StatusOr<std::shared_ptr<const ModelText>> ModelText::FromProto(
    const v1::GetTokenizerResponse& response, int32_t byte_vocab_size) {
  TokenizerFiles files;
  for (const v1::TokenizerFile& f : response.files()) {
    std::optional<std::string>* slot = nullptr;
    if (f.name() == kTokenizerJson) slot = &files.tokenizer_json;
    if (f.name() == kTokenizerConfigJson) slot = &files.tokenizer_config_json;
    if (f.name() == kGenerationConfigJson) slot = &files.generation_config_json;
    if (f.name() == kChatTemplateJinja) slot = &files.chat_template_jinja;
    if (slot == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("GetTokenizer: unknown file '", f.name().substr(0, 64), "'"));
    }
    if (slot->has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("GetTokenizer: file ", f.name(), " twice"));
    }
    *slot = f.content();
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const ModelText> text,
                   Load(std::move(files), std::nullopt, byte_vocab_size));
  if (text->hash() != response.tokenizer_hash()) {
    return absl::DataLossError(absl::StrCat("GetTokenizer: the files hash to ", text->hash(),
                                            ", not to the reported ",
                                            response.tokenizer_hash().substr(0, 64)));
  }
  return text;
}

absl::StatusOr<std::string> ModelText::RenderChat(const v1::ChatPrompt& chat) const {
  if (!chat_template_.has_value()) {
    return absl::InvalidArgumentError(
        "chat: this model has no chat template (tokenizer_config.json has no chat_template); "
        "start the server with --chat-template FILE, or send a text prompt");
  }
  if (chat.messages().empty()) {
    return absl::InvalidArgumentError("chat.messages: at least one message is required");
  }
  // ordered_json: dicts keep the client's key order, as Python's do.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (int i = 0; i < chat.messages_size(); ++i) {
    const v1::ChatMessage& m = chat.messages(i);
    nlohmann::ordered_json message = {{"role", m.role()}, {"content", m.content()}};
    if (m.has_name()) message["name"] = m.name();
    if (m.has_reasoning_content()) message["reasoning_content"] = m.reasoning_content();
    if (!m.fields_json().empty()) {
      nlohmann::ordered_json fields =
          nlohmann::ordered_json::parse(m.fields_json(), nullptr, /*allow_exceptions=*/false);
      if (fields.is_discarded() || !fields.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat("chat.messages[", i, "].fields_json: must be a JSON object"));
      }
      for (auto& [key, value] : fields.items()) message[key] = std::move(value);
    }
    messages.push_back(std::move(message));
  }
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  if (!chat.chat_template_kwargs_json().empty()) {
    extra = nlohmann::ordered_json::parse(chat.chat_template_kwargs_json(), nullptr,
                                          /*allow_exceptions=*/false);
    if (extra.is_discarded() || !extra.is_object()) {
      return absl::InvalidArgumentError(
          "chat.chat_template_kwargs_json: must be a JSON object, e.g. {\"enable_thinking\": "
          "false}");
    }
  }
  const bool add_generation_prompt =
      chat.has_add_generation_prompt() ? chat.add_generation_prompt() : true;
  return chat_template_->RenderChat(messages, add_generation_prompt, extra, special_tokens_);
}

absl::StatusOr<std::vector<int32_t>> ModelText::PromptIds(
    const v1::GenerateRequest& request) const {
  switch (request.prompt_case()) {
    case v1::GenerateRequest::kText: {
      const bool add_special =
          request.has_add_special_tokens() ? request.add_special_tokens() : true;
      return tokenizer_->Encode(request.text(), add_special);
    }
    case v1::GenerateRequest::kChat: {
      ASSIGN_OR_RETURN(std::string rendered, RenderChat(request.chat()));
      return tokenizer_->Encode(rendered, /*add_special_tokens=*/false);
    }
    case v1::GenerateRequest::kTokenIds:
      return std::vector<int32_t>(request.token_ids().ids().begin(),
                                  request.token_ids().ids().end());
    case v1::GenerateRequest::PROMPT_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("prompt: one of text, token_ids or chat is required");
}

}  // namespace tessera
