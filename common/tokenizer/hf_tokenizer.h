// A Hugging Face tokenizer read from tokenizer.json: added tokens, normalizer,
// pre-tokenizer, BPE model, post-processor and decoder, run as the Rust
// `tokenizers` library runs them (encode with add_special_tokens, decode with
// skip_special_tokens). Anything the file uses that is not implemented fails
// at load with the JSON path and type, never as a wrong tokenization.
// Thread-safe for concurrent Encode/Decode once built; the Set* methods are
// for the loader, before the tokenizer is shared.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer.h"
#include "common/tokenizer/added_vocabulary.h"
#include "common/tokenizer/bpe_model.h"
#include "common/tokenizer/decoder.h"
#include "common/tokenizer/normalizer.h"
#include "common/tokenizer/post_processor.h"
#include "common/tokenizer/pre_tokenizer.h"

namespace tessera::hf {

class HfTokenizer final : public Tokenizer {
 public:
  // Parses the text of a tokenizer.json. Errors name "tokenizer.json: <path>".
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> FromJson(absl::string_view json_text);

  // Encodes valid UTF-8 `text` (INVALID_ARGUMENT naming the byte offset
  // otherwise). Added-token spellings in `text` are matched, special ones
  // included; `add_special_tokens` runs the post-processor (e.g. BOS).
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              bool add_special_tokens) const override;
  absl::StatusOr<std::string> Decode(std::span<const int32_t> ids,
                                     bool skip_special) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> bos_id() const override { return bos_id_; }
  std::vector<int32_t> eos_ids() const override { return eos_ids_; }
  bool IsSpecial(int32_t id) const override;
  std::optional<int32_t> TokenToId(absl::string_view token) const override;

  // The loader's settings (tokenizer_config.json / generation_config.json).
  void SetSpecialIds(std::optional<int32_t> bos, std::vector<int32_t> eos) {
    bos_id_ = bos;
    eos_ids_ = std::move(eos);
  }
  void SetPostProcessor(std::unique_ptr<PostProcessor> p) { post_processor_ = std::move(p); }

 private:
  HfTokenizer() = default;
  absl::Status EncodeText(absl::string_view text, bool at_origin, std::vector<int32_t>* ids) const;

  std::unique_ptr<Normalizer> normalizer_;       // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer_;  // may be null
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;  // may be null
  std::unique_ptr<Decoder> decoder_;               // may be null
  std::unique_ptr<AddedVocabulary> added_;
  int32_t vocab_size_ = 0;
  std::optional<int32_t> bos_id_;
  std::vector<int32_t> eos_ids_;
};

}  // namespace tessera::hf
