#include "common/tokenizer/pre_tokenizer.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/unicode.h"

namespace tessera::hf {
namespace {

// GPT-2's pre-tokenization pattern (ByteLevel with use_regex).
constexpr absl::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Part {
  Span span;
  bool is_match;
};

// Applies `behavior` to the covering list of parts; the result's flag says
// whether a part is removed.
std::vector<Part> ApplyBehavior(std::vector<Part> parts, SplitBehavior behavior) {
  std::vector<Part> out;
  out.reserve(parts.size());
  switch (behavior) {
    case SplitBehavior::kRemoved:
      return parts;
    case SplitBehavior::kIsolated:
      for (Part& p : parts) out.push_back({p.span, false});
      return out;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (!out.empty() && p.is_match == previous_match) {
          out.back().span.second = p.span.second;
        } else {
          out.push_back({p.span, false});
        }
        previous_match = p.is_match;
      }
      return out;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !out.empty()) {
          out.back().span.second = p.span.second;
        } else {
          out.push_back({p.span, false});
        }
        previous_match = p.is_match;
      }
      return out;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().span.first = it->span.first;
        } else {
          out.push_back({it->span, false});
        }
        previous_match = it->is_match;
      }
      return std::vector<Part>(out.rbegin(), out.rend());
    }
  }
  return out;
}

absl::StatusOr<SplitBehavior> ParseBehavior(const Json& j, absl::string_view path) {
  ASSIGN_OR_RETURN(const std::string b, StringField(j, "behavior", path));
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return absl::InvalidArgumentError(absl::StrCat(JoinPath(path, "behavior"), ": unknown \"", b,
                                                 "\" (Removed, Isolated, MergedWithPrevious, "
                                                 "MergedWithNext, Contiguous)"));
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Pattern> pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    std::vector<PreToken> out;
    out.reserve(pieces->size() * 2);
    std::vector<Span> matches;
    for (PreToken& piece : *pieces) {
      matches.clear();
      RETURN_IF_ERROR(pattern_->FindAll(piece.text, &matches));
      SplitByMatches(std::move(piece), matches, behavior_, invert_, &out);
    }
    *pieces = std::move(out);
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<Pattern> pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<Pattern> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    if (add_prefix_space_) {
      for (PreToken& p : *pieces) {
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, " ");
      }
    }
    if (regex_ != nullptr) {
      std::vector<PreToken> out;
      std::vector<Span> matches;
      for (PreToken& piece : *pieces) {
        matches.clear();
        RETURN_IF_ERROR(regex_->FindAll(piece.text, &matches));
        SplitByMatches(std::move(piece), matches, SplitBehavior::kIsolated, false, &out);
      }
      *pieces = std::move(out);
    }
    std::string mapped;
    for (PreToken& p : *pieces) {
      mapped.clear();
      AppendByteLevel(p.text, &mapped);
      p.text.swap(mapped);
    }
    return absl::OkStatus();
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Pattern> regex_;  // null without use_regex
};

// Splits at every character `is_match` accepts.
template <typename Pred>
void CharMatches(absl::string_view text, Pred is_match, std::vector<Span>* out) {
  for (size_t i = 0; i < text.size();) {
    int len = 0;
    const uint32_t cp = DecodeUtf8(text, i, &len);
    if (is_match(cp)) out->emplace_back(i, i + len);
    i += len;
  }
}

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    std::vector<PreToken> out;
    std::vector<Span> matches;
    for (PreToken& piece : *pieces) {
      matches.clear();
      CharMatches(piece.text, IsNumeric, &matches);
      SplitByMatches(std::move(piece), matches,
                     individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false,
                     &out);
    }
    *pieces = std::move(out);
    return absl::OkStatus();
  }

 private:
  bool individual_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)),
        space_(Pattern::Literal(" ")),
        marker_(Pattern::Literal(replacement_)),
        scheme_(scheme),
        split_(split) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    std::vector<PreToken> out;
    std::vector<Span> matches;
    for (PreToken& piece : *pieces) {
      ASSIGN_OR_RETURN(piece.text, space_->ReplaceAll(piece.text, replacement_));
      const bool starts = absl::StartsWith(piece.text, replacement_);
      switch (scheme_) {
        case PrependScheme::kAlways:
          if (!starts) piece.text.insert(0, replacement_);
          break;
        case PrependScheme::kFirst:
          if (!starts && piece.at_origin) piece.text.insert(0, replacement_);
          break;
        case PrependScheme::kNever:
          break;
      }
      if (!split_) {
        if (!piece.text.empty()) out.push_back(std::move(piece));
        continue;
      }
      matches.clear();
      RETURN_IF_ERROR(marker_->FindAll(piece.text, &matches));
      SplitByMatches(std::move(piece), matches, SplitBehavior::kMergedWithNext, false, &out);
    }
    *pieces = std::move(out);
    return absl::OkStatus();
  }

 private:
  std::string replacement_;
  std::unique_ptr<Pattern> space_;
  std::unique_ptr<Pattern> marker_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    for (const auto& step : steps_) RETURN_IF_ERROR(step->PreTokenize(pieces));
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParseMetaspace(const Json& j,
                                                             absl::string_view path) {
  ASSIGN_OR_RETURN(std::string replacement, StringField(j, "replacement", path));
  int chars = 0;
  for (unsigned char b : replacement) chars += (b & 0xC0) != 0x80;
  if (chars != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(JoinPath(path, "replacement"), ": must be one character"));
  }
  PrependScheme scheme = PrependScheme::kAlways;
  ASSIGN_OR_RETURN(std::optional<std::string> s, OptionalStringField(j, "prepend_scheme", path));
  if (s.has_value()) {
    if (*s == "always") {
      scheme = PrependScheme::kAlways;
    } else if (*s == "first") {
      scheme = PrependScheme::kFirst;
    } else if (*s == "never") {
      scheme = PrependScheme::kNever;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          JoinPath(path, "prepend_scheme"), ": unknown \"", *s, "\" (always, first, never)"));
    }
  } else {  // the older format
    ASSIGN_OR_RETURN(const bool add, BoolField(j, "add_prefix_space", true, path));
    scheme = add ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  ASSIGN_OR_RETURN(const bool split, BoolField(j, "split", true, path));
  return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, split);
}

}  // namespace

void SplitByMatches(PreToken piece, const std::vector<Span>& matches, SplitBehavior behavior,
                    bool invert, std::vector<PreToken>* out) {
  const size_t n = piece.text.size();
  if (n == 0) return;
  if (matches.empty() && !invert) {
    // No match: the piece stays whole (Removed with invert would drop it).
    out->push_back(std::move(piece));
    return;
  }
  std::vector<Part> parts;
  parts.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const Span& m : matches) {
    if (prev != m.first) parts.push_back({{prev, m.first}, invert});
    parts.push_back({m, !invert});
    prev = m.second;
  }
  if (prev != n) parts.push_back({{prev, n}, invert});
  for (const Part& p : ApplyBehavior(std::move(parts), behavior)) {
    if (p.is_match || p.span.first == p.span.second) continue;
    out->push_back({piece.text.substr(p.span.first, p.span.second - p.span.first),
                    piece.at_origin && p.span.first == 0});
  }
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& j,
                                                                absl::string_view path) {
  ASSIGN_OR_RETURN(const std::string type, ComponentType(j, path));
  if (type == "Split") {
    ASSIGN_OR_RETURN(std::unique_ptr<Pattern> pattern, PatternField(j, "pattern", path));
    ASSIGN_OR_RETURN(const SplitBehavior behavior, ParseBehavior(j, path));
    ASSIGN_OR_RETURN(const bool invert, BoolField(j, "invert", false, path));
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, invert);
  }
  if (type == "ByteLevel") {
    ASSIGN_OR_RETURN(const bool prefix, BoolField(j, "add_prefix_space", true, path));
    ASSIGN_OR_RETURN(const bool use_regex, BoolField(j, "use_regex", true, path));
    std::unique_ptr<Pattern> regex;
    if (use_regex) {
      ASSIGN_OR_RETURN(regex, Pattern::Regex(kGpt2Pattern, path));
    }
    return std::make_unique<ByteLevelPreTokenizer>(prefix, std::move(regex));
  }
  if (type == "Digits") {
    ASSIGN_OR_RETURN(const bool individual, BoolField(j, "individual_digits", false, path));
    return std::make_unique<DigitsPreTokenizer>(individual);
  }
  if (type == "Metaspace") return ParseMetaspace(j, path);
  if (type == "Sequence") {
    ASSIGN_OR_RETURN(const Json* list, ArrayField(j, "pretokenizers", path));
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list->size(); ++i) {
      ASSIGN_OR_RETURN(std::unique_ptr<PreTokenizer> step,
                       ParsePreTokenizer((*list)[i], JoinPath(JoinPath(path, "pretokenizers"), i)));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  return UnsupportedType(path, "pre-tokenizer", type,
                         "ByteLevel, Digits, Metaspace, Sequence, Split");
}

}  // namespace tessera::hf
