#include "common/tokenizer/word_cache.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace tessera::hf {

WordCache::WordCache(size_t capacity) : per_shard_(std::max<size_t>(1, capacity / kShards)) {}

WordCache::Shard& WordCache::ShardFor(absl::string_view word) const {
  // The high bits: the map itself uses the low ones.
  return shards_[(absl::HashOf(word) >> 40) % kShards];
}

bool WordCache::Lookup(absl::string_view word, std::vector<int32_t>* out) const {
  if (word.size() > kMaxWordBytes) return false;
  Shard& shard = ShardFor(word);
  absl::ReaderMutexLock lock(&shard.mu);
  auto it = shard.map.find(word);
  if (it == shard.map.end()) return false;
  out->insert(out->end(), it->second.begin(), it->second.end());
  return true;
}

void WordCache::Insert(absl::string_view word, const int32_t* ids, size_t n) {
  if (word.size() > kMaxWordBytes) return;
  Shard& shard = ShardFor(word);
  absl::MutexLock lock(&shard.mu);
  if (shard.map.size() >= per_shard_) shard.map.clear();
  shard.map.try_emplace(word, ids, ids + n);
}

}  // namespace tessera::hf
