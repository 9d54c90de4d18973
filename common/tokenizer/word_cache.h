// A bounded cache from a pre-tokenized word to its BPE ids. Every thread has
// its own 4-way set-associative table per cache (no locks or shared cache
// lines on the encode path, so threads scale); a thread keeps the tables of
// its four most recently used caches. A full set overwrites its entries in
// turn: the cache only saves work, it never changes a result.
// Thread-safe (Lookup and Insert may be called concurrently from any thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace tessera::hf {

class WordCache {
 public:
  // Words longer than this many bytes are never cached.
  static constexpr size_t kMaxWordBytes = 256;

  WordCache();
  WordCache(const WordCache&) = delete;
  WordCache& operator=(const WordCache&) = delete;

  // Appends the cached ids of `word` to `out` and returns true, or returns
  // false (and leaves `out` alone) on a miss.
  bool Lookup(absl::string_view word, std::vector<int32_t>* out) const;
  // Remembers `ids` for `word` in this thread's table.
  void Insert(absl::string_view word, const int32_t* ids, size_t n) const;

 private:
  const uint64_t uid_;  // unique per cache, never reused (thread tables are keyed by it)
};

}  // namespace tessera::hf
