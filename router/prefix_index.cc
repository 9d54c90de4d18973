#include "router/prefix_index.h"

#include <algorithm>
#include <utility>

#include "common/check.h"

namespace tessera::router {
namespace {

// MatchPrefix maps candidate slots below this to their index with a dense
// table; larger ones (slots are dense, so only with a thousand workers or
// more) go through a hash map.
constexpr WorkerSlot kDenseSlotLimit = 1024;

}  // namespace

void PrefixIndex::AddHolder(WorkerSlot slot, uint64_t hash) {
  Holders& holders = holders_[hash];
  if (std::find(holders.begin(), holders.end(), slot) == holders.end()) holders.push_back(slot);
}

void PrefixIndex::RemoveHolder(WorkerSlot slot, uint64_t hash) {
  auto it = holders_.find(hash);
  if (it == holders_.end()) return;
  Holders& holders = it->second;
  auto pos = std::find(holders.begin(), holders.end(), slot);
  if (pos == holders.end()) return;
  *pos = holders.back();
  holders.pop_back();
  if (holders.empty()) holders_.erase(it);
}

void PrefixIndex::Store(WorkerSlot slot, std::span<const uint64_t> hashes) {
  if (hashes.empty()) return;
  absl::MutexLock lock(&mu_);
  absl::flat_hash_set<uint64_t>& blocks = blocks_[slot];
  for (uint64_t h : hashes) {
    if (blocks.insert(h).second) AddHolder(slot, h);
  }
}

void PrefixIndex::Evict(WorkerSlot slot, std::span<const uint64_t> hashes) {
  if (hashes.empty()) return;
  absl::MutexLock lock(&mu_);
  auto it = blocks_.find(slot);
  if (it == blocks_.end()) return;
  absl::flat_hash_set<uint64_t>& blocks = it->second;
  for (uint64_t h : hashes) {
    if (blocks.erase(h) > 0) RemoveHolder(slot, h);
  }
  if (blocks.empty()) blocks_.erase(it);
}

void PrefixIndex::Reset(WorkerSlot slot, std::span<const uint64_t> hashes) {
  // Built before taking the lock: lookups are not held up by it.
  absl::flat_hash_set<uint64_t> fresh(hashes.begin(), hashes.end());
  absl::MutexLock lock(&mu_);
  auto it = blocks_.find(slot);
  if (it != blocks_.end()) {
    // Apply the difference only: a reconnect's snapshot mostly repeats what
    // the index already has.
    for (uint64_t h : it->second) {
      if (!fresh.contains(h)) RemoveHolder(slot, h);
    }
    for (uint64_t h : fresh) {
      if (!it->second.contains(h)) AddHolder(slot, h);
    }
  } else {
    for (uint64_t h : fresh) AddHolder(slot, h);
  }
  if (fresh.empty()) {
    if (it != blocks_.end()) blocks_.erase(it);
  } else if (it != blocks_.end()) {
    it->second = std::move(fresh);
  } else {
    blocks_.emplace(slot, std::move(fresh));
  }
}

void PrefixIndex::RemoveWorker(WorkerSlot slot) {
  absl::flat_hash_set<uint64_t> gone;
  {
    absl::MutexLock lock(&mu_);
    auto it = blocks_.find(slot);
    if (it == blocks_.end()) return;
    gone = std::move(it->second);
    blocks_.erase(it);
    for (uint64_t h : gone) RemoveHolder(slot, h);
  }
  // `gone` is freed here, outside the lock.
}

void PrefixIndex::MatchPrefix(std::span<const uint64_t> prompt_hashes,
                              std::span<const WorkerSlot> candidates,
                              std::span<int> matched) const {
  TESSERA_CHECK(matched.size() == candidates.size(), "MatchPrefix: ", matched.size(),
                " outputs for ", candidates.size(), " candidates");
  std::fill(matched.begin(), matched.end(), 0);
  if (candidates.empty() || prompt_hashes.empty()) return;

  // slot -> index of its first occurrence in `candidates`, so that each
  // block costs O(its holders), not O(candidates x holders).
  WorkerSlot max_slot = *std::max_element(candidates.begin(), candidates.end());
  const bool dense = max_slot < kDenseSlotLimit;
  absl::InlinedVector<int, 64> dense_index;
  absl::flat_hash_map<WorkerSlot, int> sparse_index;
  bool duplicates = false;
  if (dense) dense_index.assign(max_slot + 1, -1);
  for (size_t i = 0; i < candidates.size(); ++i) {
    int& at = dense ? dense_index[candidates[i]]
                    : sparse_index.try_emplace(candidates[i], -1).first->second;
    if (at < 0) {
      at = static_cast<int>(i);
    } else {
      duplicates = true;
    }
  }
  auto index_of = [&](WorkerSlot slot) -> int {
    if (dense) return slot <= max_slot ? dense_index[slot] : -1;
    auto it = sparse_index.find(slot);
    return it == sparse_index.end() ? -1 : it->second;
  };

  {
    absl::ReaderMutexLock lock(&mu_);
    for (size_t block = 0; block < prompt_hashes.size(); ++block) {
      auto it = holders_.find(prompt_hashes[block]);
      if (it == holders_.end()) break;
      // A candidate still matching has matched[i] == block; each holder that
      // is such a candidate extends its prefix by one.
      int extended = 0;
      for (WorkerSlot holder : it->second) {
        int i = index_of(holder);
        if (i >= 0 && matched[i] == static_cast<int>(block)) {
          matched[i] = static_cast<int>(block) + 1;
          ++extended;
        }
      }
      if (extended == 0) break;
    }
  }
  if (duplicates) {
    for (size_t i = 0; i < candidates.size(); ++i) matched[i] = matched[index_of(candidates[i])];
  }
}

int64_t PrefixIndex::BlockCount(WorkerSlot slot) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = blocks_.find(slot);
  return it == blocks_.end() ? 0 : static_cast<int64_t>(it->second.size());
}

int64_t PrefixIndex::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<int64_t>(holders_.size());
}

}  // namespace tessera::router
