// The BPE model of tokenizer.json ("model": {"type": "BPE"}), as Hugging Face
// `tokenizers` defines it: vocab + ranked merges (given as "a b" strings or
// ["a", "b"] pairs), continuing_subword_prefix / end_of_word_suffix,
// byte_fallback (<0xXX> pieces for characters outside the vocabulary),
// unk_token with fuse_unk, ignore_merges (a word that is itself a token is
// emitted whole). Covers byte-level BPE (GPT-2, Llama 3, Qwen) and
// SentencePiece-style BPE (Llama 2, Mistral). Dropout must be absent, null or
// 0 (serving is deterministic).
// Immutable after Parse (its word cache is per thread); thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer/json_fields.h"
#include "common/tokenizer/word_cache.h"

namespace tessera::hf {

class BpeModel {
 public:
  // The model object `j` at JSON `path` ("model"). UNIMPLEMENTED naming the
  // path for another model type (WordPiece, Unigram, WordLevel) or a dropout;
  // INVALID_ARGUMENT for a malformed vocab or merges (e.g. a merge whose parts
  // or result are not in the vocabulary).
  static absl::StatusOr<std::unique_ptr<BpeModel>> Parse(const Json& j, absl::string_view path);

  // Appends the ids of one pre-tokenized `word` (valid UTF-8, non-empty).
  void Tokenize(absl::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> TokenToId(absl::string_view token) const;
  // The token string of `id`, nullptr when the vocabulary has none.
  const std::string* IdToToken(int32_t id) const;
  // One past the largest id in the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }
  // How many tokens the vocabulary has (HF's get_vocab_size()).
  int32_t vocab_count() const { return static_cast<int32_t>(vocab_.size()); }

 private:
  BpeModel() = default;
  void TokenizeWord(absl::string_view word, std::vector<int32_t>* ids) const;
  void Merge(absl::string_view word, std::vector<int32_t>* ids) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_token_;
  // (left id << 32 | right id) -> (rank, merged id).
  absl::flat_hash_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  int32_t byte_ids_[256];  // ids of "<0xXX>", -1 when absent
  // Ids of the one-character tokens of the BMP by code point (-1: none), so
  // most characters skip the string-keyed vocabulary.
  std::vector<int32_t> char_ids_;
  std::optional<int32_t> unk_id_;
  std::string prefix_;  // continuing_subword_prefix
  std::string suffix_;  // end_of_word_suffix
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  // True when no token has a "▁" right after another character: long words
  // (SentencePiece-style text without a pre-tokenizer) are cut before each
  // such "▁" and encoded part by part.
  bool split_at_marker_ = false;
  WordCache cache_;
};

}  // namespace tessera::hf
