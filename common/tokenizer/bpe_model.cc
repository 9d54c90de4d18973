#include "common/tokenizer/bpe_model.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "common/tokenizer/unicode.h"

namespace tessera::hf {
namespace {

constexpr absl::string_view kMarker = "\xE2\x96\x81";  // SentencePiece's "▁"
// One-character tokens of the Basic Multilingual Plane are found by code point.
constexpr size_t kCharTable = 0x10000;
// Words longer than this are cut at "▁" when that is exact (split_at_marker_).
constexpr size_t kSplitAboveBytes = 48;

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// The two parts of merge `m` (a "a b" string or an ["a", "b"] pair).
absl::StatusOr<std::pair<std::string, std::string>> MergeParts(const Json& m,
                                                               absl::string_view path) {
  if (m.is_string()) {
    const std::string& s = m.get_ref<const std::string&>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": merge \"", s, "\" is not two tokens separated by one space"));
    }
    return std::make_pair(s.substr(0, space), s.substr(space + 1));
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return std::make_pair(m[0].get<std::string>(), m[1].get<std::string>());
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": a merge must be \"a b\" or [\"a\", \"b\"], got ", m.dump()));
}

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
};

struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::Parse(const Json& j, absl::string_view path) {
  ASSIGN_OR_RETURN(const std::string type, ComponentType(j, path));
  if (type != "BPE") return UnsupportedType(path, "model", type, "BPE");
  if (auto d = j.find("dropout"); d != j.end() && !d->is_null()) {
    if (!d->is_number() || d->get<double>() != 0.0) {
      return absl::UnimplementedError(absl::StrCat(JoinPath(path, "dropout"), ": BPE dropout ",
                                                   d->dump(), " is not supported (use null)"));
    }
  }
  std::unique_ptr<BpeModel> m(new BpeModel());
  const std::string vocab_path = JoinPath(path, "vocab");
  auto vocab = j.find("vocab");
  if (vocab == j.end() || !vocab->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(vocab_path, ": expected an object"));
  }
  m->vocab_.reserve(vocab->size());
  for (const auto& [token, id] : vocab->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 30)) {
      return absl::InvalidArgumentError(
          absl::StrCat(vocab_path, ": token \"", token, "\" has id ", id.dump()));
    }
    const int32_t n = id.get<int32_t>();
    if (static_cast<size_t>(n) >= m->id_to_token_.size()) {
      m->id_to_token_.resize(n + 1);
      m->has_token_.resize(n + 1, false);
    }
    m->id_to_token_[n] = token;
    m->has_token_[n] = true;
    m->vocab_.emplace(token, n);
  }
  ASSIGN_OR_RETURN(std::optional<std::string> prefix,
                   OptionalStringField(j, "continuing_subword_prefix", path));
  ASSIGN_OR_RETURN(std::optional<std::string> suffix,
                   OptionalStringField(j, "end_of_word_suffix", path));
  m->prefix_ = prefix.value_or("");
  m->suffix_ = suffix.value_or("");
  ASSIGN_OR_RETURN(m->fuse_unk_, BoolField(j, "fuse_unk", false, path));
  ASSIGN_OR_RETURN(m->byte_fallback_, BoolField(j, "byte_fallback", false, path));
  ASSIGN_OR_RETURN(m->ignore_merges_, BoolField(j, "ignore_merges", false, path));
  ASSIGN_OR_RETURN(std::optional<std::string> unk, OptionalStringField(j, "unk_token", path));
  if (unk.has_value()) {
    auto it = m->vocab_.find(*unk);
    if (it == m->vocab_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(JoinPath(path, "unk_token"), ": \"", *unk, "\" is not in the vocabulary"));
    }
    m->unk_id_ = it->second;
  }
  m->split_at_marker_ = m->prefix_.empty() && m->suffix_.empty() && m->vocab_.contains(kMarker);
  for (auto it = m->vocab_.begin(); m->split_at_marker_ && it != m->vocab_.end(); ++it) {
    const absl::string_view t = it->first;
    for (size_t pos = t.find(kMarker, 1); pos != absl::string_view::npos;
         pos = t.find(kMarker, pos + kMarker.size())) {
      if (!absl::EndsWith(t.substr(0, pos), kMarker)) m->split_at_marker_ = false;
    }
  }
  m->char_ids_.assign(kCharTable, -1);
  for (const auto& [token, id] : m->vocab_) {
    if (token.empty() || token.size() > 3 || FindInvalidUtf8(token).has_value()) continue;
    int len = 0;
    const uint32_t cp = DecodeUtf8(token, 0, &len);
    if (static_cast<size_t>(len) == token.size()) m->char_ids_[cp] = id;
  }
  for (int b = 0; b < 256; ++b) {
    auto it = m->vocab_.find(absl::StrFormat("<0x%02X>", b));
    m->byte_ids_[b] = it == m->vocab_.end() ? -1 : it->second;
  }

  const std::string merges_path = JoinPath(path, "merges");
  ASSIGN_OR_RETURN(const Json* merges, ArrayField(j, "merges", path));
  m->merges_.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const std::string p = JoinPath(merges_path, i);
    ASSIGN_OR_RETURN(auto parts, MergeParts((*merges)[i], p));
    auto [a, b] = std::move(parts);
    std::string merged = a;
    merged.append(absl::StartsWith(b, m->prefix_) ? b.substr(m->prefix_.size()) : b);
    auto ia = m->vocab_.find(a);
    auto ib = m->vocab_.find(b);
    auto im = m->vocab_.find(merged);
    for (auto [it, s] : {std::pair{ia, &a}, {ib, &b}, {im, &merged}}) {
      if (it == m->vocab_.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(p, ": token \"", *s, "\" is not in the vocabulary"));
      }
    }
    m->merges_.insert_or_assign(PairKey(ia->second, ib->second),
                                std::make_pair(static_cast<int32_t>(i), im->second));
  }
  return m;
}

std::optional<int32_t> BpeModel::TokenToId(absl::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= id_limit() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::Tokenize(absl::string_view word, std::vector<int32_t>* ids) const {
  if (split_at_marker_ && word.size() > kSplitAboveBytes) {
    // No token spans a "▁" that follows another character, so BPE on the
    // parts between them gives the same ids as on the whole, and the parts
    // are short enough for the cache.
    size_t start = 0;
    for (size_t pos = word.find(kMarker, 1); pos != absl::string_view::npos;
         pos = word.find(kMarker, pos + kMarker.size())) {
      if (absl::EndsWith(word.substr(0, pos), kMarker)) continue;
      TokenizeWord(word.substr(start, pos - start), ids);
      start = pos;
    }
    TokenizeWord(word.substr(start), ids);
    return;
  }
  TokenizeWord(word, ids);
}

void BpeModel::TokenizeWord(absl::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(word); it != vocab_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  if (cache_.Lookup(word, ids)) return;
  const size_t before = ids->size();
  Merge(word, ids);
  cache_.Insert(word, ids->data() + before, ids->size() - before);
}

void BpeModel::Merge(absl::string_view word, std::vector<int32_t>* ids) const {
  // Per-thread scratch: no allocation per word.
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  symbols.clear();
  heap.clear();
  auto add = [&](int32_t id) {
    const int32_t n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, -1});
    if (n > 0) symbols[n - 1].next = n;
  };
  // The pending <unk> run (HF's merge_word, fuse_unk included).
  bool unk_pending = false;
  std::string piece;
  const bool plain = prefix_.empty() && suffix_.empty();
  for (size_t i = 0; i < word.size();) {
    const int len = Utf8Length(static_cast<unsigned char>(word[i]));
    absl::string_view s = word.substr(i, len);
    if (!plain) {
      piece.clear();
      if (i > 0) piece.append(prefix_);
      piece.append(s.data(), s.size());
      if (i + len >= word.size()) piece.append(suffix_);
      s = piece;
    }
    i += len;
    if (plain && s.size() <= 3) {  // a character of the BMP
      int cp_len = 0;
      if (const int32_t id = char_ids_[DecodeUtf8(s, 0, &cp_len)]; id >= 0) {
        if (unk_pending) add(*unk_id_);
        unk_pending = false;
        add(id);
        continue;
      }
      if (!byte_fallback_ && !unk_id_.has_value()) continue;
    } else if (auto it = vocab_.find(s); it != vocab_.end()) {
      if (unk_pending) add(*unk_id_);
      unk_pending = false;
      add(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : s) all = all && byte_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : s) add(byte_ids_[b]);
        continue;
      }
    }
    if (unk_id_.has_value()) {
      if (unk_pending && !fuse_unk_) add(*unk_id_);
      unk_pending = true;
    }
  }
  if (unk_pending) add(*unk_id_);

  // A min-heap on (rank, position) in `heap`.
  auto push = [&](const Candidate& c) {
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end(), std::greater<Candidate>());
  };
  auto consider = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    auto it = merges_.find(PairKey(symbols[pos].id, symbols[next].id));
    if (it != merges_.end()) push({it->second.first, pos, it->second.second});
  };
  for (int32_t p = 0; p + 1 < static_cast<int32_t>(symbols.size()); ++p) consider(p);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<Candidate>());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    if (left.id < 0 || left.next < 0) continue;
    auto it = merges_.find(PairKey(left.id, symbols[left.next].id));
    if (it == merges_.end() || it->second.second != top.new_id) continue;
    // left + right -> left (the merged token); right is unlinked.
    Symbol& right = symbols[left.next];
    left.id = top.new_id;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    right.id = -1;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (const Symbol& s : symbols) {
    if (s.id >= 0) ids->push_back(s.id);
  }
}

}  // namespace tessera::hf
