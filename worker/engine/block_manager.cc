#include "worker/engine/block_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera {

BlockManager::BlockManager(const CacheConfig& config, HashFn hash_fn)
    : block_size_(config.block_size),
      num_blocks_(static_cast<int>(config.num_blocks)),
      enable_prefix_caching_(config.enable_prefix_caching),
      hash_fn_(hash_fn) {
  TESSERA_CHECK(config.Validate().ok(), config.Validate().message());
  TESSERA_CHECK(hash_fn_ != nullptr);
  blocks_.resize(num_blocks_);
  // A stack: block 0 is handed out first.
  free_list_.reserve(num_blocks_);
  for (int32_t b = num_blocks_ - 1; b >= 0; --b) free_list_.push_back(b);
  if (enable_prefix_caching_) {
    block_tokens_.resize(static_cast<size_t>(num_blocks_) * block_size_);
    cached_.reserve(num_blocks_);
  }
}

void BlockManager::EnsureHashes(Sequence& seq, int n) {
  std::vector<BlockHash>& hashes = seq.block_hashes_;
  if (static_cast<int>(hashes.size()) >= n) return;
  if (hashes.capacity() == 0) hashes.reserve(seq.tokens_.capacity() / block_size_ + 1);
  const std::span<const int32_t> tokens = seq.all_tokens();
  for (int i = static_cast<int>(hashes.size()); i < n; ++i) {
    const BlockHash parent = i == 0 ? kRootBlockHash : hashes[i - 1];
    hashes.push_back(
        hash_fn_(parent, tokens.subspan(static_cast<size_t>(i) * block_size_, block_size_)));
  }
}

int BlockManager::MatchPrefix(Sequence& seq) {
  match_.clear();
  if (!enable_prefix_caching_) return 0;
  TESSERA_CHECK(seq.block_table_.empty(), seq.request_id(), ": prefix lookup while holding blocks");
  // Never the whole sequence: its last token must run to give logits.
  const int max_blocks = (seq.num_tokens() - 1) / block_size_;
  EnsureHashes(seq, max_blocks);
  const std::span<const int32_t> tokens = seq.all_tokens();
  int evictable = 0;
  BlockHash parent = kRootBlockHash;
  for (int i = 0; i < max_blocks; ++i) {
    const BlockHash h = seq.block_hashes_[i];
    const auto it = cached_.find(h);
    if (it == cached_.end()) break;
    const int32_t b = it->second;
    const Block& block = blocks_[b];
    // The hash is only a key: the chain and the tokens must match too.
    if (block.parent != parent) break;
    const std::span<const int32_t> want =
        tokens.subspan(static_cast<size_t>(i) * block_size_, block_size_);
    if (!std::equal(want.begin(), want.end(), BlockTokens(b).begin())) break;
    if (block.ref == 0) ++evictable;
    match_.push_back(b);
    parent = h;
  }
  return evictable;
}

int BlockManager::GetCachedPrefixTokens(Sequence& seq) {
  if (!enable_prefix_caching_ || !seq.block_table_.empty()) return 0;
  MatchPrefix(seq);
  return static_cast<int>(match_.size()) * block_size_;
}

bool BlockManager::AllocateSlotsSlow(Sequence& seq, int num_new_tokens) {
  TESSERA_CHECK(num_new_tokens >= 1, seq.request_id(), ": AllocateSlots(", num_new_tokens, ")");
  TESSERA_CHECK(!seq.is_finished(), seq.request_id(), ": AllocateSlots on a finished sequence");
  const bool fresh = seq.block_table_.empty();
  int hit_blocks = 0;
  int evictable_hits = 0;
  if (fresh) {
    TESSERA_CHECK(seq.num_computed_tokens_ == 0, seq.request_id(), ": ", seq.num_computed_tokens_,
                  " computed tokens but no blocks");
    evictable_hits = MatchPrefix(seq);
    hit_blocks = static_cast<int>(match_.size());
  }
  const int computed = fresh ? hit_blocks * block_size_ : seq.num_computed_tokens_;
  const int total = computed + num_new_tokens;
  TESSERA_CHECK(total <= seq.num_tokens(), seq.request_id(), ": slots for ", total,
                " tokens but the sequence has ", seq.num_tokens());
  const int blocks_needed = (total + block_size_ - 1) / block_size_;
  const int held = fresh ? hit_blocks : static_cast<int>(seq.block_table_.size());
  const int to_take = std::max(0, blocks_needed - held);
  // A partial block shared with a fork is copied before this write.
  const int tail = computed / block_size_;
  const bool copy_tail = !fresh && (seq.fork_flags_ & Sequence::kSharedTail) != 0 &&
                         computed % block_size_ != 0 && tail < held &&
                         blocks_[seq.block_table_[tail]].ref > 1;
  // Evictable blocks the prefix hit is about to take are not available.
  if (to_take + (copy_tail ? 1 : 0) > num_free_blocks() - evictable_hits) return false;
  if (!fresh) seq.fork_flags_ &= static_cast<uint8_t>(~Sequence::kSharedTail);
  if (copy_tail) {
    // active (shared) -> active (ref--): this holder moves to its own copy.
    const int32_t shared = seq.block_table_[tail];
    const int32_t own = TakeBlock();
    --blocks_[shared].ref;
    seq.block_table_[tail] = own;
    copies_.push_back({shared, own});
  }

  if (fresh && enable_prefix_caching_) {
    for (const int32_t b : match_) {
      Block& block = blocks_[b];
      if (block.ref == 0) LruRemove(b);  // cached -> active (prefix hit)
      ++block.ref;
      seq.block_table_.push_back(b);
    }
    seq.num_registered_blocks_ = hit_blocks;
    seq.num_computed_tokens_ = computed;
    if (seq.num_cached_tokens_ < 0) seq.num_cached_tokens_ = computed;
    prefix_queries_ += seq.num_tokens();
    prefix_hits_ += computed;
  } else if (fresh && seq.num_cached_tokens_ < 0) {
    seq.num_cached_tokens_ = 0;
  }
  for (int i = 0; i < to_take; ++i) seq.block_table_.push_back(TakeBlock());
  return true;
}

int32_t BlockManager::TakeBlock() {
  int32_t b;
  if (!free_list_.empty()) {
    b = free_list_.back();
    free_list_.pop_back();
  } else {
    TESSERA_CHECK(lru_head_ != kNil, "no block to take: the caller checked availability");
    b = lru_head_;
    LruRemove(b);
    // cached -> free (evicted)
    Block& block = blocks_[b];
    cached_.erase(block.hash);
    block.hashed = false;
    events_.push_back({KvEvent::Type::kEvicted, block.hash});
  }
  // free -> active
  blocks_[b].ref = 1;
  return b;
}

void BlockManager::RegisterFullBlocks(Sequence& seq) {
  const int full = seq.num_computed_tokens_ / block_size_;
  if (full <= seq.num_registered_blocks_) return;
  TESSERA_CHECK(full <= static_cast<int>(seq.block_table_.size()), seq.request_id(), ": ", full,
                " computed blocks but ", seq.block_table_.size(), " held");
  EnsureHashes(seq, full);
  const std::span<const int32_t> tokens = seq.all_tokens();
  for (int i = seq.num_registered_blocks_; i < full; ++i) {
    const int32_t b = seq.block_table_[i];
    Block& block = blocks_[b];
    if (block.hashed) continue;  // came from the cache
    const BlockHash h = seq.block_hashes_[i];
    // An identical block (or, astronomically rarely, a collision) is already
    // cached: keep that one; this sequence's copy stays unregistered.
    if (!cached_.try_emplace(h, b).second) continue;
    block.hashed = true;
    block.hash = h;
    block.parent = i == 0 ? kRootBlockHash : seq.block_hashes_[i - 1];
    std::copy_n(tokens.begin() + static_cast<size_t>(i) * block_size_, block_size_,
                block_tokens_.begin() + static_cast<size_t>(b) * block_size_);
    events_.push_back({KvEvent::Type::kStored, h});
  }
  seq.num_registered_blocks_ = full;
}

void BlockManager::Free(Sequence& seq) {
  std::vector<int32_t>& table = seq.block_table_;
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    const int32_t b = *it;
    Block& block = blocks_[b];
    TESSERA_CHECK(block.ref > 0, seq.request_id(), ": frees block ", b, " with ref 0");
    if (--block.ref > 0) continue;
    if (block.hashed) {
      LruPushBack(b);  // active -> cached (ref 0, hash kept)
    } else {
      free_list_.push_back(b);  // active -> free
    }
  }
  table.clear();
  seq.num_registered_blocks_ = 0;
  seq.num_computed_tokens_ = 0;
  seq.fork_flags_ &= static_cast<uint8_t>(~Sequence::kSharedTail);
}

void BlockManager::Fork(Sequence& parent, Sequence& child) {
  TESSERA_CHECK(child.block_table_.empty() && child.num_computed_tokens_ == 0, child.request_id(),
                ": fork into a sequence holding ", child.block_table_.size(), " blocks");
  const int computed = parent.num_computed_tokens_;
  TESSERA_CHECK(computed <= child.num_tokens() &&
                    std::equal(parent.tokens_.begin(), parent.tokens_.begin() + computed,
                               child.tokens_.begin()),
                child.request_id(), ": fork of a sequence with other tokens");
  for (const int32_t b : parent.block_table_) ++blocks_[b].ref;  // active -> active (shared)
  child.block_table_ = parent.block_table_;
  child.num_computed_tokens_ = computed;
  child.num_registered_blocks_ = parent.num_registered_blocks_;
  const int full = computed / block_size_;
  child.block_hashes_.assign(
      parent.block_hashes_.begin(),
      parent.block_hashes_.begin() +
          std::min<ptrdiff_t>(full, static_cast<ptrdiff_t>(parent.block_hashes_.size())));
  child.num_cached_tokens_ = parent.num_cached_tokens_;
  if (computed % block_size_ != 0) {
    parent.fork_flags_ |= Sequence::kSharedTail;
    child.fork_flags_ |= Sequence::kSharedTail;
  }
}

std::vector<KvEvent> BlockManager::TakeEvents() {
  std::vector<KvEvent> out;
  out.swap(events_);
  return out;
}

std::vector<BlockHash> BlockManager::CachedBlockHashes() const {
  std::vector<BlockHash> out;
  out.reserve(cached_.size());
  for (const auto& [hash, block] : cached_) out.push_back(hash);
  return out;
}

void BlockManager::LruPushBack(int32_t b) {
  Block& block = blocks_[b];
  block.lru_prev = lru_tail_;
  block.lru_next = kNil;
  if (lru_tail_ != kNil) {
    blocks_[lru_tail_].lru_next = b;
  } else {
    lru_head_ = b;
  }
  lru_tail_ = b;
  ++lru_size_;
}

void BlockManager::LruRemove(int32_t b) {
  Block& block = blocks_[b];
  if (block.lru_prev != kNil) {
    blocks_[block.lru_prev].lru_next = block.lru_next;
  } else {
    lru_head_ = block.lru_next;
  }
  if (block.lru_next != kNil) {
    blocks_[block.lru_next].lru_prev = block.lru_prev;
  } else {
    lru_tail_ = block.lru_prev;
  }
  block.lru_prev = block.lru_next = kNil;
  --lru_size_;
}

absl::Status BlockManager::CheckInvariants(std::span<const Sequence* const> holders) const {
  auto fail = [](auto&&... args) { return absl::InternalError(absl::StrCat(args...)); };
  std::vector<int> refs(num_blocks_, 0);
  std::vector<int> last_holder(num_blocks_, -1);
  for (size_t s = 0; s < holders.size(); ++s) {
    const Sequence& seq = *holders[s];
    const std::vector<int32_t>& table = seq.block_table();
    for (const int32_t b : table) {
      if (b < 0 || b >= num_blocks_) return fail(seq.request_id(), " holds block id ", b);
      if (last_holder[b] == static_cast<int>(s)) {
        return fail(seq.request_id(), " holds block ", b, " twice");
      }
      last_holder[b] = static_cast<int>(s);
      ++refs[b];
    }
    const int64_t capacity = static_cast<int64_t>(table.size()) * block_size_;
    if (seq.num_computed_tokens() > capacity) {
      return fail(seq.request_id(), ": ", seq.num_computed_tokens(), " computed tokens in ",
                  table.size(), " blocks");
    }
    if (capacity >= static_cast<int64_t>(seq.num_tokens()) + block_size_) {
      return fail(seq.request_id(), ": ", table.size(), " blocks for ", seq.num_tokens(),
                  " tokens");
    }
    if (seq.num_registered_blocks_ > static_cast<int>(table.size())) {
      return fail(seq.request_id(), ": ", seq.num_registered_blocks_, " registered blocks of ",
                  table.size());
    }
  }
  // Copy-on-write: a shared block that a holder will write (it holds
  // uncomputed slots of it) must be that holder's partial last computed block,
  // and the holder must be marked to copy it first.
  for (const Sequence* seq : holders) {
    const std::vector<int32_t>& table = seq->block_table();
    const int computed = seq->num_computed_tokens();
    for (size_t i = static_cast<size_t>(computed / block_size_); i < table.size(); ++i) {
      const int32_t b = table[i];
      if (refs[b] <= 1) continue;
      const bool partial_tail =
          static_cast<int>(i) == computed / block_size_ && computed % block_size_ != 0;
      if (!partial_tail) {
        return fail(seq->request_id(), " (choice ", seq->choice_index(), ") will write block ", b,
                    " that ", refs[b], " tables share");
      }
      if ((seq->fork_flags_ & Sequence::kSharedTail) == 0) {
        return fail(seq->request_id(), " (choice ", seq->choice_index(),
                    ") shares its partial block ", b, " without being marked to copy it");
      }
    }
  }
  // 0 = active, 1 = free list, 2 = LRU.
  std::vector<int8_t> where(num_blocks_, 0);
  for (const int32_t b : free_list_) {
    if (b < 0 || b >= num_blocks_) return fail("free list holds block id ", b);
    if (where[b] != 0) return fail("block ", b, " twice on the free list");
    where[b] = 1;
    if (blocks_[b].hashed) return fail("free block ", b, " still has a hash");
  }
  int lru_count = 0;
  int32_t prev = kNil;
  for (int32_t b = lru_head_; b != kNil; b = blocks_[b].lru_next) {
    if (b < 0 || b >= num_blocks_) return fail("LRU holds block id ", b);
    if (where[b] != 0) return fail("block ", b, " both free and cached, or twice in the LRU");
    where[b] = 2;
    if (blocks_[b].lru_prev != prev) return fail("LRU back link broken at block ", b);
    if (!blocks_[b].hashed) return fail("cached block ", b, " has no hash");
    prev = b;
    if (++lru_count > num_blocks_) return fail("LRU list has a cycle");
  }
  if (prev != lru_tail_) return fail("LRU tail is ", lru_tail_, ", walk ends at ", prev);
  if (lru_count != lru_size_)
    return fail("LRU holds ", lru_count, " blocks, size says ", lru_size_);
  int hashed = 0;
  for (int32_t b = 0; b < num_blocks_; ++b) {
    const Block& block = blocks_[b];
    if (block.ref != refs[b]) {
      return fail("block ", b, " has ref ", block.ref, " but ", refs[b], " block tables hold it");
    }
    if (block.ref > 0 && where[b] != 0) {
      return fail("block ", b, " is referenced (ref ", block.ref, ") and ",
                  where[b] == 1 ? "free" : "cached-evictable");
    }
    if (block.ref == 0 && where[b] == 0) return fail("block ", b, " has ref 0 but is not free");
    if (block.hashed) {
      ++hashed;
      const auto it = cached_.find(block.hash);
      if (it == cached_.end() || it->second != b) {
        return fail("block ", b, " has a hash that does not index it");
      }
    }
  }
  if (hashed != static_cast<int>(cached_.size())) {
    return fail(cached_.size(), " cached hashes but ", hashed, " hashed blocks");
  }
  return absl::OkStatus();
}

}  // namespace tessera
