// A bounded cache from a pre-tokenized word to its BPE ids, shared by all
// threads: 64 shards, each a hash map behind its own reader/writer mutex, so
// concurrent Encode calls rarely contend. A full shard is cleared before the
// next insert (the cache only saves work; it never changes a result).
// Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace tessera::hf {

class WordCache {
 public:
  // Words longer than this many bytes are never cached.
  static constexpr size_t kMaxWordBytes = 256;

  explicit WordCache(size_t capacity);
  WordCache(const WordCache&) = delete;
  WordCache& operator=(const WordCache&) = delete;

  // Appends the cached ids of `word` to `out` and returns true, or returns
  // false (and leaves `out` alone) on a miss.
  bool Lookup(absl::string_view word, std::vector<int32_t>* out) const;
  // Remembers `ids` for `word` (ignored for words over kMaxWordBytes).
  void Insert(absl::string_view word, const int32_t* ids, size_t n);

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, std::vector<int32_t>> map ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(absl::string_view word) const;

  size_t per_shard_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace tessera::hf
