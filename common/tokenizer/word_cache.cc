#include "common/tokenizer/word_cache.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>

#include "absl/hash/hash.h"

namespace tessera::hf {
namespace {

constexpr size_t kWays = 4;
constexpr size_t kSets = 4096;  // 16384 words per thread and cache
constexpr size_t kTablesPerThread = 4;

struct Slot {
  std::string word;
  std::vector<int32_t> ids;  // empty: an empty slot
};

// A 4-way set: the hashes first (one cache line to probe), then the slots;
// a full set replaces its ways in turn.
struct Set {
  uint64_t hash[kWays] = {};
  uint32_t victim = 0;
  Slot slots[kWays];
};

struct Table {
  uint64_t uid;
  std::vector<Set> sets;
};

// This thread's table for cache `uid`, most recently used first.
Table& TableFor(uint64_t uid) {
  thread_local std::vector<std::unique_ptr<Table>> tables;
  for (size_t i = 0; i < tables.size(); ++i) {
    if (tables[i]->uid == uid) {
      if (i != 0) std::rotate(tables.begin(), tables.begin() + i, tables.begin() + i + 1);
      return *tables[0];
    }
  }
  if (tables.size() == kTablesPerThread) tables.pop_back();
  tables.insert(tables.begin(), std::make_unique<Table>(Table{uid, std::vector<Set>(kSets)}));
  return *tables[0];
}

std::atomic<uint64_t> next_uid{1};

}  // namespace

WordCache::WordCache() : uid_(next_uid.fetch_add(1)) {}

bool WordCache::Lookup(absl::string_view word, std::vector<int32_t>* out) const {
  if (word.size() > kMaxWordBytes) return false;
  const uint64_t h = absl::HashOf(word);
  const Set& set = TableFor(uid_).sets[h % kSets];
  for (size_t w = 0; w < kWays; ++w) {
    const Slot& s = set.slots[w];
    if (set.hash[w] == h && !s.ids.empty() && s.word == word) {
      out->insert(out->end(), s.ids.begin(), s.ids.end());
      return true;
    }
  }
  return false;
}

void WordCache::Insert(absl::string_view word, const int32_t* ids, size_t n) const {
  if (word.size() > kMaxWordBytes || n == 0) return;
  const uint64_t h = absl::HashOf(word);
  Set& set = TableFor(uid_).sets[h % kSets];
  size_t w = 0;
  while (w < kWays && !set.slots[w].ids.empty()) ++w;
  if (w == kWays) w = set.victim++ % kWays;
  set.hash[w] = h;
  Slot& s = set.slots[w];
  s.word.assign(word.data(), word.size());
  s.ids.assign(ids, ids + n);
}

}  // namespace tessera::hf
