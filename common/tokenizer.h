// Tokenizer interface: text <-> token ids. Implementations are immutable after
// construction and thread-safe for concurrent Encode/Decode calls;
// IncrementalDecoder is per-stream state (one per request, not thread-safe).
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

  // Token ids of `text`, with the BOS token first when `add_bos` and the
  // tokenizer has one. Special-token spellings in `text` (e.g. "<s>") are
  // encoded as plain text, never as the special ids (no prompt injection).
  virtual absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                                      bool add_bos) const = 0;
  // The bytes of `ids` (special tokens are omitted when `skip_special`).
  // May end in an incomplete UTF-8 sequence; use IncrementalDecoder to stream.
  // INVALID_ARGUMENT for an id outside [0, vocab_size()).
  virtual absl::StatusOr<std::string> DecodeBytes(std::span<const int32_t> ids,
                                                  bool skip_special) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
  virtual bool IsSpecial(int32_t id) const = 0;
};

// Streams text out of a token stream: each Append returns the newly completed
// text, holding back a trailing incomplete UTF-8 sequence until the bytes that
// finish it arrive; Flush returns what is left (an unfinished sequence as one
// U+FFFD). Invalid UTF-8 anywhere becomes U+FFFD, one per maximal invalid
// subpart (the Unicode/WHATWG convention, as Python's errors="replace"), so
// the output is always valid UTF-8. Append fails (state unchanged) when
// DecodeBytes fails, e.g. for an id outside the vocabulary.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer* tokenizer, bool skip_special = true)
      : tokenizer_(tokenizer), skip_special_(skip_special) {}
  absl::StatusOr<std::string> Append(std::span<const int32_t> ids);
  std::string Flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete trailing UTF-8 sequence
};

// The embedded byte-level tokenizer (the Llama / sentencepiece byte-fallback
// layout): id 0 = <unk>, 1 = <s> (BOS), 2 = </s> (EOS), byte b = id b + 3.
// Only ids 0, 1, 2 are special: skip_special omits them, otherwise they decode
// as "<unk>", "<s>", "</s>". Ids from 259 up to vocab_size - 1 have no text of
// their own; they are not special and decode as the text "<tok_N>". Encode
// maps every byte to its byte id (so "<s>" in text is three byte tokens).
// Expects vocab_size >= 259; with a smaller vocabulary Encode fails
// (INVALID_ARGUMENT) on bytes that have no id. The default for dummy models
// and for model directories without a tokenizer.
std::unique_ptr<Tokenizer> MakeByteTokenizer(int32_t vocab_size);

}  // namespace tessera
