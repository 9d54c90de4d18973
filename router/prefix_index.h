// Which worker holds which KV blocks, for prefix-aware placement.
//
// Fed by each worker's WatchKvEvents stream (a snapshot, then STORED /
// EVICTED batches of block hashes from common/block_hash.h). A block hash
// names a whole prefix (it chains its parent), so "worker w holds the first k
// blocks of this prompt" is "w holds the hashes h_1..h_k".
//
// Layout: one map hash -> the (few) worker slots holding it, plus per slot
// the set of its hashes (so Reset and RemoveWorker cost O(that slot's
// blocks), not O(index)). A lookup walks the prompt's hashes in order and
// costs O(prompt blocks x holders per block); it never scans a worker's
// blocks.
//
// Workers are named by a dense slot number (assigned by the WorkerPool, reused
// after RemoveWorker). Thread-safe: writers (event streams) take a writer
// lock, lookups a reader lock.
#pragma once

#include <cstdint>
#include <span>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"

namespace tessera::router {

using WorkerSlot = uint32_t;

class PrefixIndex {
 public:
  PrefixIndex() = default;
  PrefixIndex(const PrefixIndex&) = delete;
  PrefixIndex& operator=(const PrefixIndex&) = delete;

  // `slot` now holds these blocks (idempotent per hash).
  void Store(WorkerSlot slot, std::span<const uint64_t> hashes);
  // `slot` no longer holds these blocks (unknown hashes are ignored).
  void Evict(WorkerSlot slot, std::span<const uint64_t> hashes);
  // Replaces everything `slot` holds with `hashes` (a watch snapshot, sent
  // first on every (re)connected stream).
  void Reset(WorkerSlot slot, std::span<const uint64_t> hashes);
  // Forgets `slot` entirely (worker removed, or its stream broke and its
  // state is unknown until the next snapshot).
  void RemoveWorker(WorkerSlot slot);

  // For each candidates[i], the number of leading hashes of `prompt_hashes`
  // that slot holds, written to matched[i] (matched.size() ==
  // candidates.size()). Stops early once no candidate matches.
  void MatchPrefix(std::span<const uint64_t> prompt_hashes, std::span<const WorkerSlot> candidates,
                   std::span<int> matched) const;

  // Blocks held by `slot` (0 for an unknown slot).
  int64_t BlockCount(WorkerSlot slot) const;
  // Distinct hashes indexed (for tests and stats).
  int64_t size() const;

 private:
  using Holders = absl::InlinedVector<WorkerSlot, 4>;
  // Adds / removes one (slot, hash) pair in holders_ (not in blocks_).
  void AddHolder(WorkerSlot slot, uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveHolder(WorkerSlot slot, uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Holders> holders_ ABSL_GUARDED_BY(mu_);
  // The hashes each known slot holds (never empty: a slot holding nothing is
  // erased).
  absl::flat_hash_map<WorkerSlot, absl::flat_hash_set<uint64_t>> blocks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::router
