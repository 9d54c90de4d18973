// The text side of a served model: its tokenizer (Hugging Face tokenizer.json
// or the byte tokenizer), the tokenizer's settings and its chat template, and
// how a request's prompt (text, chat messages or token ids) becomes token ids.
// The worker loads it from the model directory (or --tokenizer DIR); the
// router builds the same thing from the files the worker serves over
// Worker.GetTokenizer, so both tokenize and render identically.
// Immutable after Load; every const method is safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/chat_template.h"
#include "common/tokenizer.h"
#include "common/tokenizer/loader.h"
#include "tessera/v1/llm.pb.h"
#include "tessera/v1/worker.pb.h"

namespace tessera {

// Receive limit for Worker.GetTokenizer (the largest real tokenizer.json
// files are around 20 MB; Qwen3's is 11 MB).
inline constexpr int kMaxTokenizerBytes = 64 << 20;

class ModelText {
 public:
  // `files`: the tokenizer files (none: the byte tokenizer of
  // `byte_vocab_size` ids). `chat_template_override`: the text of a
  // --chat-template file; it becomes the files' chat_template.jinja, which
  // takes precedence over tokenizer_config.json's template.
  // INVALID_ARGUMENT / UNIMPLEMENTED from the tokenizer loader (naming the
  // file and JSON path); INVALID_ARGUMENT for a chat template that does not
  // parse (with its line and column).
  static absl::StatusOr<std::shared_ptr<const ModelText>> Load(
      TokenizerFiles files, std::optional<std::string> chat_template_override,
      int32_t byte_vocab_size);

  // Load from `tokenizer_dir` (its tokenizer.json, tokenizer_config.json and
  // generation_config.json when present) and, when `chat_template_file` is
  // not empty, the template in that file. Errors name the path.
  static absl::StatusOr<std::shared_ptr<const ModelText>> LoadFromDir(
      absl::string_view tokenizer_dir, absl::string_view chat_template_file,
      int32_t byte_vocab_size);

  // The files as Worker.GetTokenizer serves them, and back. FromProto
  // refuses a response whose files do not hash to its tokenizer_hash.
  void ToProto(v1::GetTokenizerResponse* response) const;
  static absl::StatusOr<std::shared_ptr<const ModelText>> FromProto(
      const v1::GetTokenizerResponse& response, int32_t byte_vocab_size);

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const TokenizerInfo& info() const { return info_; }
  // Content hash of the tokenizer files (chat template included): equal
  // hashes, identical tokenization and rendering. Empty for the byte
  // tokenizer without any file (a router builds that one from vocab_size).
  const std::string& hash() const { return hash_; }
  bool has_chat_template() const { return chat_template_.has_value(); }
  // The ids that end generation besides the model config's: the tokenizer's
  // EOS and generation_config.json's eos_token_id list.
  const std::vector<int32_t>& eos_ids() const { return info_.eos_ids; }

  // The conversation rendered with the chat template, as transformers'
  // apply_chat_template(messages, add_generation_prompt, **kwargs) renders
  // it. INVALID_ARGUMENT: no messages, kwargs that are not a JSON object,
  // no chat template (the message says to pass --chat-template), or a
  // template that raises (the template's own message).
  absl::StatusOr<std::string> RenderChat(const v1::ChatPrompt& chat) const;

  // A request's prompt as token ids: text is encoded with the tokenizer's
  // special tokens unless add_special_tokens is false; chat messages are
  // rendered, then encoded without special tokens (the template writes
  // them); token ids are returned as given. INVALID_ARGUMENT for no prompt
  // or a prompt that cannot be encoded (e.g. invalid UTF-8).
  absl::StatusOr<std::vector<int32_t>> PromptIds(const v1::GenerateRequest& request) const;

 private:
  ModelText() = default;

  TokenizerFiles files_;
  std::unique_ptr<Tokenizer> tokenizer_;
  TokenizerInfo info_;
  std::optional<jinja::ChatTemplate> chat_template_;
  nlohmann::ordered_json special_tokens_;  // bos_token, eos_token, ... for templates
  std::string hash_;
};

}  // namespace tessera
