// Tokenizer interface: text <-> token ids. Implementations are immutable after
// construction and thread-safe for concurrent Encode/Decode calls;
// IncrementalDecoder is per-stream state (one per request, not thread-safe).
//
// Two implementations: the Hugging Face tokenizer of a model directory's
// tokenizer.json (common/tokenizer/hf_tokenizer.h, loaded with
// common/tokenizer/loader.h) and the byte tokenizer below (dummy models and
// model directories without tokenizer files).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`. With `add_special_tokens`, the tokens the tokenizer
  // adds around a sequence (BOS for Llama/Mistral, nothing for Qwen) are
  // added. The Hugging Face tokenizer matches added-token spellings in `text`
  // (e.g. "<|im_start|>" becomes its id), as Hugging Face does; it requires
  // valid UTF-8 (INVALID_ARGUMENT otherwise). The byte tokenizer encodes
  // every byte as itself (special spellings stay plain text).
  virtual absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                                      bool add_special_tokens) const = 0;
  // The text of `ids` (special tokens omitted when `skip_special`), always
  // valid UTF-8: invalid byte sequences become U+FFFD as the tokenizer's
  // decoder defines it. INVALID_ARGUMENT for an id outside [0, vocab_size()).
  virtual absl::StatusOr<std::string> Decode(std::span<const int32_t> ids,
                                             bool skip_special) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  // Every id that ends generation (e.g. Llama 3's <|end_of_text|> and
  // <|eot_id|>), the tokenizer's own EOS first; may be empty.
  virtual std::vector<int32_t> eos_ids() const = 0;
  // The first of eos_ids().
  std::optional<int32_t> eos_id() const {
    std::vector<int32_t> ids = eos_ids();
    return ids.empty() ? std::nullopt : std::optional<int32_t>(ids.front());
  }
  virtual bool IsSpecial(int32_t id) const = 0;
  // The id of a token spelled `token` in the vocabulary, nullopt if none.
  virtual std::optional<int32_t> TokenToId(absl::string_view token) const = 0;
};

// Streams the text of a token stream the way vLLM does (prefix_offset /
// read_offset over the token list): each Append decodes the tokens since the
// last emitted piece and returns the new text, holding back a trailing U+FFFD
// (an unfinished UTF-8 sequence may still complete it).
// Context tokens before the new ones keep SentencePiece's leading space
// right; the pieces of a stream concatenate to exactly Decode(all ids) on
// valid text. Flush returns what is held back and starts a new stream.
// Output is always valid UTF-8.
// Append fails (state unchanged) when Decode fails, e.g. for an id outside
// the vocabulary.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer* tokenizer, bool skip_special = true)
      : tokenizer_(tokenizer), skip_special_(skip_special) {}
  absl::StatusOr<std::string> Append(std::span<const int32_t> ids);
  std::string Flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // the tokens from prefix_offset on
  size_t read_offset_ = 0;    // in ids_: tokens before it are emitted
  std::string prefix_text_;   // Decode(ids_[0, read_offset_))
  size_t emitted_ = 0;        // bytes emitted past prefix_text_ while incomplete
};

// The embedded byte-level tokenizer (the Llama / sentencepiece byte-fallback
// layout): id 0 = <unk>, 1 = <s> (BOS), 2 = </s> (EOS), byte b = id b + 3.
// Only ids 0, 1, 2 are special: skip_special omits them, otherwise they decode
// as "<unk>", "<s>", "</s>". Ids from 259 up to vocab_size - 1 have no text of
// their own; they are not special and decode as the text "<tok_N>". Encode
// maps every byte to its byte id (so "<s>" in text is three byte tokens) and
// adds BOS when add_special_tokens. Decode turns invalid UTF-8 into U+FFFD,
// one per maximal invalid subpart. Expects vocab_size >= 259; with a smaller
// vocabulary Encode fails (INVALID_ARGUMENT) on bytes that have no id.
std::unique_ptr<Tokenizer> MakeByteTokenizer(int32_t vocab_size);

}  // namespace tessera
