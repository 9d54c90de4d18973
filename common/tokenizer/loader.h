// Loads a model's tokenizer: tokenizer.json (the Hugging Face tokenizer),
// tokenizer_config.json (bos/eos/unk/pad tokens, add_bos_token /
// add_eos_token, chat_template, model_max_length) and generation_config.json
// (eos_token_id, an int or a list) and chat_template.jinja, from a model directory or from the
// files' contents (the router gets them from a worker, never from a model dir). Without
// tokenizer.json the byte tokenizer is used (dummy models); a tokenizer.json that fails to load is
// an error, never bytes. Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer.h"

namespace tessera {

// The tokenizer files of a model; nullopt for a file that is absent.
struct TokenizerFiles {
  std::optional<std::string> tokenizer_json;
  std::optional<std::string> tokenizer_config_json;
  std::optional<std::string> generation_config_json;
  // chat_template.jinja: when present, the chat template (it takes precedence
  // over tokenizer_config.json's, as in transformers).
  std::optional<std::string> chat_template_jinja;

  // Reads the files that exist in `dir`. FAILED_PRECONDITION when the
  // directory has only a tokenizer format other than tokenizer.json
  // (tokenizer.model, vocab.json), which is not supported.
  static absl::StatusOr<TokenizerFiles> ReadDir(absl::string_view dir);
};

// What the server needs to know besides the Tokenizer itself.
struct TokenizerInfo {
  std::optional<int32_t> bos_id;
  std::vector<int32_t> eos_ids;  // all stop ids, the tokenizer's EOS first
  std::optional<int32_t> pad_id;
  // The special-token strings of tokenizer_config.json (template variables
  // bos_token, eos_token, unk_token, pad_token); nullopt when null/absent.
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> unk_token;
  std::optional<std::string> pad_token;
  std::string chat_template;                // empty when the config has none
  std::optional<int64_t> model_max_length;  // absent or effectively unlimited: nullopt
  bool byte_tokenizer = false;              // true when no tokenizer.json was given
  // Content hash (XXH3-128, hex) of the files, identical for identical
  // files: the router refuses a worker whose hash differs.
  std::string hash;
};

struct LoadedTokenizer {
  std::unique_ptr<Tokenizer> tokenizer;
  TokenizerInfo info;
};

// Builds the tokenizer from file contents. `byte_vocab_size` is the byte
// tokenizer's vocabulary when there is no tokenizer.json. Errors name the
// file and JSON path: INVALID_ARGUMENT for malformed files, UNIMPLEMENTED for
// unsupported components.
absl::StatusOr<LoadedTokenizer> LoadTokenizer(const TokenizerFiles& files, int32_t byte_vocab_size);
// ReadDir + LoadTokenizer.
absl::StatusOr<LoadedTokenizer> LoadTokenizerFromDir(absl::string_view dir,
                                                     int32_t byte_vocab_size);

// The content hash LoadTokenizer puts in TokenizerInfo::hash.
std::string TokenizerFilesHash(const TokenizerFiles& files);

}  // namespace tessera
