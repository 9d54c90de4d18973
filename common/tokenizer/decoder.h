// Decoders of tokenizer.json ("decoder"), as Hugging Face `tokenizers`
// defines them: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip and
// Sequence. Each rewrites the list of token strings (decode_chain); decode's
// result is the concatenation of the final list. Output is valid UTF-8.
// Immutable after parsing; thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer/json_fields.h"

namespace tessera::hf {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual absl::Status DecodeChain(std::vector<std::string>* tokens) const = 0;
};

// The decoder described by object `j` at JSON `path`; UNIMPLEMENTED naming the
// path and type for other types (WordPiece, CTC, BPEDecoder).
absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const Json& j, absl::string_view path);

}  // namespace tessera::hf
