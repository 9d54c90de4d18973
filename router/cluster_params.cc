#include "router/cluster_params.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/api/request_limits.h"

namespace tessera::router {
namespace {

constexpr int32_t kMaxBlockSize = 1024;  // the worker's own --block-size range
constexpr int32_t kMaxModelLen = 1 << 24;
constexpr int32_t kMaxVocabSize = 1 << 24;
constexpr size_t kMaxModelIdBytes = 256;
constexpr size_t kMaxTokenizerHashChars = 64;
constexpr int32_t kMaxLogprobs = 1 << 20;
constexpr int32_t kMaxStop = 4096;
constexpr int32_t kMaxN = 1 << 20;

absl::Status CheckRange(absl::string_view field, int64_t value, int64_t lo, int64_t hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " ", value, " is out of range [", lo, ", ", hi, "]"));
}

absl::Status CheckModelId(absl::string_view field, absl::string_view id) {
  if (!id.empty() && id.size() <= kMaxModelIdBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be 1..", kMaxModelIdBytes, " bytes, got ", id.size(), " bytes"));
}

absl::Status CheckTokenizerHash(absl::string_view field, absl::string_view hash) {
  const bool hex = std::all_of(hash.begin(), hash.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
  });
  if (hex && hash.size() <= kMaxTokenizerHashChars) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, " must be empty or up to ",
                                                 kMaxTokenizerHashChars, " lowercase hex digits (",
                                                 hash.size(), " characters given)"));
}

// The message shows at most this much of a reported string.
std::string Quote(absl::string_view s) {
  constexpr size_t kShown = 64;
  return s.size() <= kShown ? absl::StrCat("'", s, "'")
                            : absl::StrCat("'", s.substr(0, kShown), "...' (", s.size(), " bytes)");
}

}  // namespace

bool SameParams(const ClusterParams& a, const ClusterParams& b) {
  const api::RequestLimits x = api::FromModelInfo(a.model);
  const api::RequestLimits y = api::FromModelInfo(b.model);
  return a.block_size == b.block_size && x.model_name == y.model_name &&
         x.max_model_len == y.max_model_len && x.vocab_size == y.vocab_size &&
         a.model.tokenizer_hash() == b.model.tokenizer_hash() && x.max_logprobs == y.max_logprobs &&
         x.max_stop == y.max_stop && x.max_n == y.max_n;
}

absl::Status ValidateReportedParams(const ClusterParams& p) {
  const v1::ModelInfo& m = p.model;
  if (absl::Status s = CheckRange("block_size", p.block_size, 1, kMaxBlockSize); !s.ok()) return s;
  if (absl::Status s = CheckModelId("model id", m.id()); !s.ok()) return s;
  if (absl::Status s = CheckRange("max_model_len", m.max_model_len(), 2, kMaxModelLen); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRange("vocab_size", m.vocab_size(), 1, kMaxVocabSize); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckTokenizerHash("tokenizer_hash", m.tokenizer_hash()); !s.ok()) return s;
  if (m.has_max_logprobs()) {
    if (absl::Status s = CheckRange("max_logprobs", m.max_logprobs(), 0, kMaxLogprobs); !s.ok()) {
      return s;
    }
  }
  if (m.has_max_stop()) {
    if (absl::Status s = CheckRange("max_stop", m.max_stop(), 0, kMaxStop); !s.ok()) return s;
  }
  if (m.has_max_n()) {
    if (absl::Status s = CheckRange("max_n", m.max_n(), 1, kMaxN); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool ClusterParamsPin::empty() const {
  return !block_size && !max_model_len && !vocab_size && !model_id && !tokenizer_hash;
}

absl::Status ClusterParamsPin::Validate() const {
  if (block_size) {
    if (absl::Status s = CheckRange("--block-size", *block_size, 1, kMaxBlockSize); !s.ok()) {
      return s;
    }
  }
  if (max_model_len) {
    if (absl::Status s = CheckRange("--max-model-len", *max_model_len, 2, kMaxModelLen); !s.ok()) {
      return s;
    }
  }
  if (vocab_size) {
    if (absl::Status s = CheckRange("--vocab-size", *vocab_size, 1, kMaxVocabSize); !s.ok()) {
      return s;
    }
  }
  if (model_id) {
    if (absl::Status s = CheckModelId("--model-id", *model_id); !s.ok()) return s;
  }
  if (tokenizer_hash) {
    if (absl::Status s = CheckTokenizerHash("--tokenizer-hash", *tokenizer_hash); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

std::string Disagreement(const ClusterParams& worker, const ClusterParamsPin& pin,
                         const std::optional<ClusterParams>& cluster) {
  const v1::ModelInfo& w = worker.model;
  // Pinned values first: they hold even before any worker was adopted.
  if (pin.block_size && worker.block_size != *pin.block_size) {
    return absl::StrCat("block_size: the worker reports ", worker.block_size,
                        ", --block-size says ", *pin.block_size);
  }
  if (pin.model_id && w.id() != *pin.model_id) {
    return absl::StrCat("model id: the worker serves ", Quote(w.id()), ", --model-id says ",
                        Quote(*pin.model_id));
  }
  if (pin.max_model_len && w.max_model_len() != *pin.max_model_len) {
    return absl::StrCat("max_model_len: the worker reports ", w.max_model_len(),
                        ", --max-model-len says ", *pin.max_model_len);
  }
  if (pin.vocab_size && w.vocab_size() != *pin.vocab_size) {
    return absl::StrCat("vocab_size: the worker reports ", w.vocab_size(), ", --vocab-size says ",
                        *pin.vocab_size);
  }
  if (pin.tokenizer_hash && w.tokenizer_hash() != *pin.tokenizer_hash) {
    return absl::StrCat("tokenizer_hash: the worker's tokenizer files or chat template hash to ",
                        Quote(w.tokenizer_hash()), ", --tokenizer-hash says ",
                        Quote(*pin.tokenizer_hash));
  }
  if (!cluster.has_value()) return "";
  const v1::ModelInfo& c = cluster->model;
  auto differs = [](absl::string_view field, int64_t mine, int64_t theirs) {
    return absl::StrCat(field, ": the worker reports ", mine, ", the cluster's is ", theirs);
  };
  if (worker.block_size != cluster->block_size) {
    return differs("block_size", worker.block_size, cluster->block_size);
  }
  if (w.id() != c.id()) {
    return absl::StrCat("model id: the worker serves ", Quote(w.id()), ", the cluster serves ",
                        Quote(c.id()));
  }
  if (w.max_model_len() != c.max_model_len()) {
    return differs("max_model_len", w.max_model_len(), c.max_model_len());
  }
  if (w.vocab_size() != c.vocab_size())
    return differs("vocab_size", w.vocab_size(), c.vocab_size());
  if (w.tokenizer_hash() != c.tokenizer_hash()) {
    return absl::StrCat("tokenizer_hash: the worker's tokenizer files or chat template (hash ",
                        Quote(w.tokenizer_hash()), ") differ from the cluster's (",
                        Quote(c.tokenizer_hash()),
                        "); serve the same tokenizer on every worker of a model");
  }
  const api::RequestLimits x = api::FromModelInfo(w);
  const api::RequestLimits y = api::FromModelInfo(c);
  if (x.max_logprobs != y.max_logprobs) {
    return differs("max_logprobs", x.max_logprobs, y.max_logprobs);
  }
  if (x.max_stop != y.max_stop) return differs("max_stop", x.max_stop, y.max_stop);
  if (x.max_n != y.max_n) return differs("max_n", x.max_n, y.max_n);
  return "";
}

// ---- ClusterVote -------------------------------------------------------------

ClusterVote::Entry* ClusterVote::Find(WorkerSlot slot) {
  for (Entry& e : votes_) {
    if (e.slot == slot) return &e;
  }
  return nullptr;
}

void ClusterVote::Set(WorkerSlot slot, const ClusterParams& params,
                      std::shared_ptr<const ModelText> text, absl::Time now) {
  Entry* e = Find(slot);
  if (e == nullptr) {
    votes_.push_back(Entry{slot, params, std::move(text), now, true});
    return;
  }
  if (!SameParams(e->params, params)) e->since = now;
  e->params = params;
  e->text = std::move(text);
  e->reachable = true;
}

void ClusterVote::SetReachable(WorkerSlot slot, bool reachable) {
  if (Entry* e = Find(slot)) e->reachable = reachable;
}

void ClusterVote::Erase(WorkerSlot slot) {
  std::erase_if(votes_, [slot](const Entry& e) { return e.slot == slot; });
}

void ClusterVote::Clear() {
  votes_.clear();
  adopted_.reset();
  adopted_text_ = nullptr;
  adopted_votes_ = 0;
}

int ClusterVote::reachable_votes() const {
  return static_cast<int>(
      std::count_if(votes_.begin(), votes_.end(), [](const Entry& e) { return e.reachable; }));
}

std::shared_ptr<const ModelText> ClusterVote::FindText(const std::string& tokenizer_hash) const {
  if (adopted_text_ != nullptr && adopted_text_->hash() == tokenizer_hash) return adopted_text_;
  for (const Entry& e : votes_) {
    if (e.text != nullptr && e.text->hash() == tokenizer_hash) return e.text;
  }
  return nullptr;
}

bool ClusterVote::Elect() {
  struct Group {
    const Entry* first;  // the earliest report of these parameters
    int reachable = 0;
    int all = 0;
  };
  std::vector<Group> groups;
  for (const Entry& e : votes_) {
    if (!Disagreement(e.params, pin_, std::nullopt).empty()) continue;  // refused by the pin
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const Group& x) { return SameParams(x.first->params, e.params); });
    if (g == groups.end()) {
      groups.push_back(Group{&e});
      g = groups.end() - 1;
    }
    if (e.since < g->first->since) g->first = &e;
    g->reachable += e.reachable ? 1 : 0;
    ++g->all;
  }
  if (groups.empty()) {
    adopted_votes_ = 0;
    return false;
  }
  auto is_adopted = [&](const Group& g) {
    return adopted_.has_value() && SameParams(g.first->params, *adopted_);
  };
  const Group* best = &groups[0];
  for (const Group& g : groups) {
    if (&g == best) continue;
    const auto key = [&](const Group& x) {
      return std::make_tuple(x.reachable, x.all, is_adopted(x) ? 1 : 0);
    };
    if (key(g) > key(*best) || (key(g) == key(*best) && g.first->since < best->first->since)) {
      best = &g;
    }
  }
  adopted_votes_ = best->reachable;
  if (is_adopted(*best)) {
    // Same parameters; a voter's tokenizer keeps the adopted one alive.
    if (adopted_text_ == nullptr) adopted_text_ = best->first->text;
    return false;
  }
  adopted_ = best->first->params;
  adopted_text_ = best->first->text;
  return true;
}

}  // namespace tessera::router
