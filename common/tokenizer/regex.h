// Patterns of tokenizer.json (`{"String": ...}` or `{"Regex": ...}`) matched
// with PCRE2 (UTF + Unicode properties, JIT-compiled). Hugging Face compiles
// its regexes with Oniguruma; the escapes whose classes differ between the two
// (`\s`, `\w`, `\h` and their negations) are rewritten to Oniguruma's
// classes before compiling.
// Immutable after Create; FindAll is thread-safe (per-thread match data).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::hf {

// A match: byte offsets [first, second) in the searched text.
using Span = std::pair<size_t, size_t>;

class Pattern {
 public:
  // A literal string: non-overlapping occurrences, left to right.
  static std::unique_ptr<Pattern> Literal(std::string literal);
  // A regular expression. INVALID_ARGUMENT (naming `path` and the position)
  // when PCRE2 rejects it.
  static absl::StatusOr<std::unique_ptr<Pattern>> Regex(absl::string_view regex,
                                                        absl::string_view path);
  ~Pattern();
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;

  // Appends the non-overlapping matches in valid UTF-8 `text` to `out`, left
  // to right. An empty match is kept only where no match just ended, and the
  // search then resumes one character later (Oniguruma's find_iter). An empty
  // literal matches nothing. RESOURCE_EXHAUSTED if PCRE2 hits a limit.
  absl::Status FindAll(absl::string_view text, std::vector<Span>* out) const;
  // `text` with every match of FindAll replaced by `content`.
  absl::StatusOr<std::string> ReplaceAll(absl::string_view text, absl::string_view content) const;

 private:
  Pattern() = default;
  std::string literal_;
  struct Compiled;
  Compiled* regex_ = nullptr;  // owned; null for a literal
};

// Rewrites an Oniguruma pattern for PCRE2 (see the file comment).
std::string OnigurumaToPcre2(absl::string_view pattern);

}  // namespace tessera::hf
