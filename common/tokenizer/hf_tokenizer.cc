#include "common/tokenizer/hf_tokenizer.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/tokenizer/unicode.h"

namespace tessera::hf {
namespace {

constexpr absl::string_view kFile = "tokenizer.json";

// The component at `key`, nullptr when absent or null.
const Json* Component(const Json& j, absl::string_view key) {
  auto it = j.find(std::string(key));
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::FromJson(absl::string_view json_text) {
  Json j = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kFile, ": not a JSON object (", json_text.size(), " bytes)"));
  }
  const std::string root(kFile);
  std::unique_ptr<HfTokenizer> t(new HfTokenizer());
  // "truncation" and "padding" are ignored, as transformers ignores them
  // (it turns them off unless a call asks for them).
  if (const Json* n = Component(j, "normalizer")) {
    ASSIGN_OR_RETURN(t->normalizer_, ParseNormalizer(*n, JoinPath(root, "normalizer")));
  }
  if (const Json* p = Component(j, "pre_tokenizer")) {
    ASSIGN_OR_RETURN(t->pre_tokenizer_, ParsePreTokenizer(*p, JoinPath(root, "pre_tokenizer")));
  }
  const Json* model = Component(j, "model");
  if (model == nullptr) return absl::InvalidArgumentError(absl::StrCat(kFile, ": model: missing"));
  ASSIGN_OR_RETURN(t->model_, BpeModel::Parse(*model, JoinPath(root, "model")));
  if (const Json* p = Component(j, "post_processor")) {
    ASSIGN_OR_RETURN(t->post_processor_, ParsePostProcessor(*p, JoinPath(root, "post_processor")));
  }
  if (const Json* d = Component(j, "decoder")) {
    ASSIGN_OR_RETURN(t->decoder_, ParseDecoder(*d, JoinPath(root, "decoder")));
  }
  const Json* added = Component(j, "added_tokens");
  ASSIGN_OR_RETURN(t->added_, AddedVocabulary::Parse(added == nullptr ? Json() : *added,
                                                     JoinPath(root, "added_tokens"),
                                                     t->normalizer_.get(), *t->model_));
  t->vocab_size_ = t->model_->id_limit();
  for (const AddedToken& a : t->added_->tokens())
    t->vocab_size_ = std::max(t->vocab_size_, a.id + 1);
  return t;
}

absl::Status HfTokenizer::EncodeText(absl::string_view text, bool at_origin,
                                     std::vector<int32_t>* ids) const {
  std::string normalized(text);
  if (normalizer_ != nullptr) RETURN_IF_ERROR(normalizer_->Normalize(&normalized));
  std::vector<Segment> segments;
  added_->SplitNormalized(normalized, &segments);
  std::vector<PreToken> pieces;
  for (const Segment& s : segments) {
    if (s.id >= 0) {
      ids->push_back(s.id);
      continue;
    }
    pieces.clear();
    pieces.push_back({normalized.substr(s.begin, s.end - s.begin), at_origin && s.begin == 0});
    if (pre_tokenizer_ != nullptr) RETURN_IF_ERROR(pre_tokenizer_->PreTokenize(&pieces));
    for (const PreToken& p : pieces) model_->Tokenize(p.text, ids);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> HfTokenizer::Encode(absl::string_view text,
                                                         bool add_special_tokens) const {
  if (std::optional<size_t> bad = FindInvalidUtf8(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat("text is not valid UTF-8 (at byte ", *bad, " of ", text.size(), ")"));
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> segments;
  added_->SplitRaw(text, &segments);
  for (const Segment& s : segments) {
    if (s.id >= 0) {
      ids.push_back(s.id);
    } else {
      RETURN_IF_ERROR(EncodeText(text.substr(s.begin, s.end - s.begin), s.begin == 0, &ids));
    }
  }
  if (add_special_tokens && post_processor_ != nullptr) post_processor_->Process(&ids);
  return ids;
}

absl::StatusOr<std::string> HfTokenizer::Decode(std::span<const int32_t> ids,
                                                bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size_) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab_size_, ")"));
    }
    if (const AddedToken* a = added_->Find(id)) {
      if (!skip_special || !a->special) tokens.push_back(a->content);
    } else if (const std::string* s = model_->IdToToken(id)) {
      tokens.push_back(*s);
    }
  }
  if (decoder_ == nullptr) return absl::StrJoin(tokens, " ");
  RETURN_IF_ERROR(decoder_->DecodeChain(&tokens));
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

bool HfTokenizer::IsSpecial(int32_t id) const {
  const AddedToken* a = added_->Find(id);
  return a != nullptr && a->special;
}

std::optional<int32_t> HfTokenizer::TokenToId(absl::string_view token) const {
  if (const AddedToken* a = added_->Find(token)) return a->id;
  return model_->TokenToId(token);
}

}  // namespace tessera::hf
