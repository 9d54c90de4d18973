// The added tokens of tokenizer.json ("added_tokens"): special tokens and
// other added tokens, matched in the input before the model runs, as Hugging
// Face `tokenizers` does by default: leftmost-longest over the tokens'
// contents, tokens with `normalized: false` on the raw text and those with
// `normalized: true` on the normalized text; `single_word` (no word character,
// as Rust's regex `\w`, touching either side), `lstrip`/`rstrip` (absorb the whitespace beside it).
// Ids are assigned as Hugging Face assigns them when it reads the file (the
// "id" fields are not trusted): a token already in the model's vocabulary
// keeps that id, others get the next id after the vocabulary, in file order.
// Immutable after Create; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer/bpe_model.h"
#include "common/tokenizer/json_fields.h"
#include "common/tokenizer/normalizer.h"

namespace tessera::hf {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool single_word = false;
};

// A part of the input: an added token (id >= 0) or text (id == -1), as the
// byte range [begin, end) of the searched string.
struct Segment {
  size_t begin;
  size_t end;
  int32_t id;
};

class AddedVocabulary {
 public:
  // The tokens of array `j` at JSON `path` for `model`; `normalizer` (may be
  // null) gives the matching form of `normalized` tokens.
  static absl::StatusOr<std::unique_ptr<AddedVocabulary>> Parse(const Json& j,
                                                                absl::string_view path,
                                                                const Normalizer* normalizer,
                                                                const BpeModel& model);

  // Splits raw `text` at the tokens that match before normalization.
  void SplitRaw(absl::string_view text, std::vector<Segment>* out) const { Split(raw_, text, out); }
  // Splits normalized `text` at the tokens that match after normalization.
  void SplitNormalized(absl::string_view text, std::vector<Segment>* out) const {
    Split(normalized_, text, out);
  }

  const AddedToken* Find(int32_t id) const;
  const AddedToken* Find(absl::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Leftmost-longest matcher over a set of patterns.
  struct Matcher {
    std::vector<std::pair<std::string, size_t>> patterns;  // (pattern, token index)
    std::array<std::vector<size_t>, 256> by_first_byte;    // pattern indices, longest first
    void Build();
  };
  void Split(const Matcher& m, absl::string_view text, std::vector<Segment>* out) const;

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int32_t, size_t> by_id_;
  absl::flat_hash_map<std::string, size_t> by_content_;
  Matcher raw_;
  Matcher normalized_;
};

}  // namespace tessera::hf
