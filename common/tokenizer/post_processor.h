// Post-processors of tokenizer.json ("post_processor"), as Hugging Face
// `tokenizers` defines them for a single sequence: TemplateProcessing (its
// "single" template), BertProcessing / RobertaProcessing ([CLS] A [SEP]),
// ByteLevel (offsets only: no change to ids) and Sequence. They add the
// special tokens of encode(..., add_special_tokens=true).
// Immutable after parsing; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer/json_fields.h"

namespace tessera::hf {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Rewrites the ids of one encoded sequence when `add_special_tokens`.
  virtual void Process(std::vector<int32_t>* ids) const = 0;
};

// The post-processor described by object `j` at JSON `path`; UNIMPLEMENTED
// naming the path and type for other types.
absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const Json& j,
                                                                  absl::string_view path);

// A TemplateProcessing equivalent to "[bos:0] $A:0 [eos:0]" (either optional),
// what transformers' LlamaTokenizerFast builds from add_bos_token /
// add_eos_token.
std::unique_ptr<PostProcessor> MakeBosEosProcessor(std::optional<int32_t> bos,
                                                   std::optional<int32_t> eos);

}  // namespace tessera::hf
