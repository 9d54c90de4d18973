#include "common/tokenizer/added_vocabulary.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tokenizer/regex.h"
#include "common/tokenizer/unicode.h"

namespace tessera::hf {
namespace {

// Whether the character `c` (its UTF-8) is a word character as Rust's regex
// crate reads `\w`, which HF's single_word check uses (UTS #18: Alphabetic,
// marks, decimal numbers, connector punctuation, joiners).
bool IsWordChar(absl::string_view c) {
  static const Pattern* word =
      Pattern::Regex(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}])", "\\w")
          .value()
          .release();
  std::vector<Span> m;
  return word->FindAll(c, &m).ok() && !m.empty();
}

// The last character of non-empty valid UTF-8 `s`.
absl::string_view LastChar(absl::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return s.substr(i);
}

absl::string_view FirstChar(absl::string_view s) {
  return s.substr(0, Utf8Length(static_cast<unsigned char>(s[0])));
}

// Where the whitespace at the end of `s` begins.
size_t TrailingSpaceStart(absl::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t i = end - 1;
    while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    int len = 0;
    if (!IsWhitespace(DecodeUtf8(s, i, &len))) break;
    end = i;
  }
  return end;
}

// How many bytes of whitespace `s` starts with.
size_t LeadingSpaceLength(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    int len = 0;
    if (!IsWhitespace(DecodeUtf8(s, i, &len))) break;
    i += len;
  }
  return i;
}

}  // namespace

void AddedVocabulary::Matcher::Build() {
  for (auto& v : by_first_byte) v.clear();
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (patterns[i].first.empty()) continue;
    by_first_byte[static_cast<unsigned char>(patterns[i].first[0])].push_back(i);
  }
  for (auto& v : by_first_byte) {
    std::stable_sort(v.begin(), v.end(), [&](size_t a, size_t b) {
      return patterns[a].first.size() > patterns[b].first.size();
    });
  }
}

absl::StatusOr<std::unique_ptr<AddedVocabulary>> AddedVocabulary::Parse(
    const Json& j, absl::string_view path, const Normalizer* normalizer, const BpeModel& model) {
  std::unique_ptr<AddedVocabulary> v(new AddedVocabulary());
  if (!j.is_null() && !j.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected an array"));
  }
  std::optional<int32_t> max_id;  // the largest id of an added token so far
  for (size_t i = 0; j.is_array() && i < j.size(); ++i) {
    const std::string p = JoinPath(path, i);
    const Json& t = j[i];
    AddedToken token;
    ASSIGN_OR_RETURN(token.content, StringField(t, "content", p));
    ASSIGN_OR_RETURN(token.special, BoolField(t, "special", false, p));
    ASSIGN_OR_RETURN(token.lstrip, BoolField(t, "lstrip", false, p));
    ASSIGN_OR_RETURN(token.rstrip, BoolField(t, "rstrip", false, p));
    ASSIGN_OR_RETURN(token.single_word, BoolField(t, "single_word", false, p));
    ASSIGN_OR_RETURN(token.normalized, BoolField(t, "normalized", !token.special, p));
    if (token.content.empty() || v->by_content_.contains(token.content)) continue;
    // HF's AddedVocabulary::add_tokens: the vocabulary's id, else the next one.
    const int32_t size = model.vocab_count();
    if (std::optional<int32_t> id = model.TokenToId(token.content)) {
      token.id = *id;
    } else if (!max_id.has_value()) {
      token.id = size;
    } else {
      token.id = *max_id >= size || size == 0 ? *max_id + 1 : size;
    }
    max_id = std::max(max_id.value_or(token.id), token.id);
    v->by_id_.emplace(token.id, v->tokens_.size());
    v->by_content_.emplace(token.content, v->tokens_.size());
    v->tokens_.push_back(std::move(token));
  }
  for (size_t i = 0; i < v->tokens_.size(); ++i) {
    const AddedToken& t = v->tokens_[i];
    if (!t.normalized) {
      v->raw_.patterns.emplace_back(t.content, i);
      continue;
    }
    std::string form = t.content;
    if (normalizer != nullptr) RETURN_IF_ERROR(normalizer->Normalize(&form));
    v->normalized_.patterns.emplace_back(std::move(form), i);
  }
  v->raw_.Build();
  v->normalized_.Build();
  return v;
}

const AddedToken* AddedVocabulary::Find(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::Find(absl::string_view content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::Split(const Matcher& m, absl::string_view text,
                            std::vector<Segment>* out) const {
  if (m.patterns.empty()) {
    if (!text.empty()) out->push_back({0, text.size(), -1});
    return;
  }
  size_t start_offset = 0;  // end of the last emitted segment
  size_t pos = 0;           // where the search resumes
  while (pos < text.size()) {
    const auto& candidates = m.by_first_byte[static_cast<unsigned char>(text[pos])];
    const std::pair<std::string, size_t>* hit = nullptr;
    for (size_t c : candidates) {
      if (absl::StartsWith(text.substr(pos), m.patterns[c].first)) {
        hit = &m.patterns[c];
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + hit->first.size();
    pos = stop;
    const AddedToken& token = tokens_[hit->second];
    if (token.single_word) {
      const bool space_before = start == 0 || !IsWordChar(LastChar(text.substr(0, start)));
      const bool space_after = stop == text.size() || !IsWordChar(FirstChar(text.substr(stop)));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) start = std::max(TrailingSpaceStart(text.substr(0, start)), start_offset);
    if (token.rstrip) stop += LeadingSpaceLength(text.substr(stop));
    if (start_offset < start) out->push_back({start_offset, start, -1});
    out->push_back({start, stop, token.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out->push_back({start_offset, text.size(), -1});
}

}  // namespace tessera::hf
