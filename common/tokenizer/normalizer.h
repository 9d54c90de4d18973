// Normalizers of tokenizer.json ("normalizer"), as Hugging Face `tokenizers`
// defines them: NFC, NFD, NFKC, NFKD, Prepend, Replace and Sequence. They
// rewrite the text of each segment between added tokens before
// pre-tokenization. Offsets are not tracked (Tessera needs only the ids).
// Immutable after parsing; thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer/json_fields.h"

namespace tessera::hf {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Normalizes valid UTF-8 `text` in place.
  virtual absl::Status Normalize(std::string* text) const = 0;
};

// The normalizer described by object `j` found at JSON `path`; UNIMPLEMENTED
// naming the path and type for a type other than the ones above.
absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& j, absl::string_view path);

}  // namespace tessera::hf
