// Pre-tokenizers of tokenizer.json ("pre_tokenizer"), as Hugging Face
// `tokenizers` defines them: Split (String or Regex pattern, the five
// behaviours, invert), ByteLevel (add_prefix_space, use_regex with GPT-2's
// pattern), Digits, Metaspace (prepend_scheme always/first/never, split) and
// Sequence. They cut normalized text into the words the model encodes one at
// a time. Immutable after parsing; thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer/json_fields.h"
#include "common/tokenizer/regex.h"

namespace tessera::hf {

// A piece of text on its way to the model. `at_origin`: the piece starts at
// offset 0 of the original input (Metaspace's "first" scheme needs it).
struct PreToken {
  std::string text;
  bool at_origin = false;
};

// What a split does with the matches of its pattern.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Cuts `piece` at `matches` (sorted, non-overlapping byte spans) as Hugging
// Face's NormalizedString::split does, appending the non-empty parts to `out`.
// With `invert`, the text between matches is what the behaviour applies to.
void SplitByMatches(PreToken piece, const std::vector<Span>& matches, SplitBehavior behavior,
                    bool invert, std::vector<PreToken>* out);

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` (valid UTF-8) by their pre-tokenized parts, in order.
  virtual absl::Status PreTokenize(std::vector<PreToken>* pieces) const = 0;
};

// The pre-tokenizer described by object `j` at JSON `path`; UNIMPLEMENTED
// naming the path and type for other types.
absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& j,
                                                                absl::string_view path);

}  // namespace tessera::hf
