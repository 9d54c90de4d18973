// The KV-cache block pool: which block ids each sequence holds, with reference
// counts and automatic prefix caching (vLLM V1 KVCacheManager-like). Pure
// bookkeeping over ids; the device memory the ids index lives elsewhere.
//
// A block is always in exactly one of three states:
//   free    ref 0, no hash            on the free list
//   active  ref > 0, hash or not      in the block tables of `ref` sequences
//   cached  ref 0, hash kept          on the LRU list, reusable by a prefix hit
//                                     until evicted (least recently freed first)
// Transitions are written in the comments of the code that makes them:
//   free -> active, active -> free, active -> cached (ref 0, hash kept),
//   cached -> active (prefix hit), cached -> free (evicted).
//
// Prefix caching: once every token of a full block has its KV computed, the
// block is registered under its chained hash (common/block_hash.h). A new
// sequence reuses the longest run of cached leading blocks whose hash, parent
// hash and tokens all match (tokens are compared, so a hash collision is never
// reused). At most floor((num_tokens - 1) / block_size) blocks are reused: the
// last token is always recomputed, so the step has logits to sample from.
//
// Forking (parallel sampling): Fork gives a new sequence the same blocks as
// another (ref++ on each). Full blocks are never written again, so they stay
// shared; a partial last block is shared until one of its holders is about
// to write into it: AllocateSlots then gives that holder a fresh block and
// records a copy (BlockCopy) that every rank runs before the step's forward
// pass (copy-on-write, as vLLM v0's blocks_to_copy; the last holder keeps the
// original).
//
// Events (kStored when a hash enters the cache, kEvicted when it leaves) feed
// the router's prefix index; the engine drains them with TakeEvents() every step.
//
// Not thread-safe: owned by the Scheduler on the engine thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "common/block_hash.h"
#include "common/config.h"
#include "worker/engine/sequence.h"

namespace tessera {

struct KvEvent {
  enum class Type { kStored, kEvicted };
  Type type;
  BlockHash hash;
  friend bool operator==(const KvEvent&, const KvEvent&) = default;
};

// Copy block `src`'s KV (every layer, keys and values) into block `dst`
// before the step's forward pass. Copies run in list order.
struct BlockCopy {
  int32_t src;
  int32_t dst;
  friend bool operator==(const BlockCopy&, const BlockCopy&) = default;
};

class BlockManager {
 public:
  // The chained block hash. Tests may pass a degenerate one to force collisions;
  // production uses HashBlock (the router computes the same).
  using HashFn = BlockHash (*)(BlockHash parent, std::span<const int32_t> tokens);

  // Requires config.Validate().ok().
  explicit BlockManager(const CacheConfig& config, HashFn hash_fn = &HashBlock);

  BlockManager(const BlockManager&) = delete;
  BlockManager& operator=(const BlockManager&) = delete;

  int block_size() const { return block_size_; }
  int num_blocks() const { return num_blocks_; }
  bool prefix_caching_enabled() const { return enable_prefix_caching_; }

  // Leading tokens of `seq.all_tokens()` that AllocateSlots would take from
  // the prefix cache: a multiple of block_size, at most
  // floor((num_tokens - 1) / block_size) * block_size. 0 when prefix caching is
  // off or `seq` already holds blocks. Changes nothing but `seq`'s memo of its
  // block hashes.
  int GetCachedPrefixTokens(Sequence& seq);

  // Makes room for `num_new_tokens` more tokens of KV after
  // seq.num_computed_tokens(). When `seq` holds no blocks yet (new or
  // preempted), it first attaches the cached prefix that GetCachedPrefixTokens
  // reports (ref++, num_computed_tokens = those tokens, and on the first
  // admission num_cached_tokens too); `num_new_tokens` counts from there.
  // Requires num_new_tokens >= 1 and num_computed + num_new <= num_tokens.
  // When the block the new tokens start in is shared with a fork (ref > 1),
  // `seq` first gets a copy of it (one more block; a BlockCopy to take with
  // TakeCopies). Returns false and changes nothing when the pool (free plus
  // evictable cached blocks) cannot supply the blocks.
  bool AllocateSlots(Sequence& seq, int num_new_tokens) {
    // Fast path, most decode steps: the held blocks have room.
    const int total = seq.num_computed_tokens_ + num_new_tokens;
    if (!seq.block_table_.empty() && seq.fork_flags_ == 0 && num_new_tokens >= 1 &&
        total <= seq.num_tokens() &&
        total <= static_cast<int>(seq.block_table_.size()) * block_size_) {
      return true;
    }
    return AllocateSlotsSlow(seq, num_new_tokens);
  }

  // Call after a step computed KV up to seq.num_computed_tokens(): registers
  // the blocks that are now full and computed under their hashes (kStored). A
  // block whose hash is already cached is not registered twice; the sequence
  // keeps its own copy, which goes back to the free list when freed.
  // No-op when prefix caching is off.
  void CacheComputedBlocks(Sequence& seq) {
    // Fast path, most steps: no block filled up.
    if (!enable_prefix_caching_ ||
        seq.num_computed_tokens_ < (seq.num_registered_blocks_ + 1) * block_size_) {
      return;
    }
    RegisterFullBlocks(seq);
  }

  // Releases every block of `seq` (tail blocks first, so in the LRU order a
  // sequence's prefix outlives its tail). Afterwards seq holds no blocks and
  // num_computed_tokens() == 0.
  void Free(Sequence& seq);

  // Makes `child` hold `parent`'s blocks (ref++ on each: active, shared) with
  // the same computed tokens, registered blocks, hash memo and cached-prompt
  // count. Requires child to hold no blocks and child.all_tokens() to start
  // with parent's computed tokens. When the last block is partial, both are
  // marked to copy it before their next write (see AllocateSlots).
  void Fork(Sequence& parent, Sequence& child);

  // Block copies that AllocateSlots decided since the last call, in order;
  // the step that writes after them must run them first.
  std::vector<BlockCopy> TakeCopies() {
    std::vector<BlockCopy> out;
    out.swap(copies_);
    return out;
  }
  // Puts back copies taken for a step that did not run (in front of any newer).
  void RestoreCopies(std::vector<BlockCopy> copies) {
    copies.insert(copies.end(), copies_.begin(), copies_.end());
    copies_.swap(copies);
  }
  bool has_copies() const { return !copies_.empty(); }

  // KV events since the last call, oldest first.
  std::vector<KvEvent> TakeEvents();
  // Every hash in the cache now (active or evictable): the snapshot a new
  // watcher starts from before following TakeEvents().
  std::vector<BlockHash> CachedBlockHashes() const;

  // ---- usage ----
  // Blocks an allocation could get now: free plus cached-evictable.
  int num_free_blocks() const { return static_cast<int>(free_list_.size()) + lru_size_; }
  // Blocks held by at least one sequence.
  int num_used_blocks() const { return num_blocks_ - num_free_blocks(); }
  // Unreferenced blocks that still hold a cached hash.
  int num_evictable_blocks() const { return lru_size_; }
  // Blocks registered in the prefix cache (active or evictable).
  int num_cached_blocks() const { return static_cast<int>(cached_.size()); }
  // Prompt tokens looked up in the prefix cache at admission, and those found.
  int64_t prefix_cache_queries() const { return prefix_queries_; }
  int64_t prefix_cache_hits() const { return prefix_hits_; }
  // Reference count of one block (for tests and invariant checks).
  int ref_count(int32_t block) const { return blocks_[block].ref; }

  // Checks every invariant of the pool against `holders`, the sequences that
  // hold blocks (the running ones): each block in exactly one state, no block
  // both free and referenced, each ref count equal to the number of block
  // tables holding it, the hash index consistent, each table as long as its
  // sequence needs, a block shared by several tables only where none of them
  // will write it (full and computed) or where each that would is marked to
  // copy it first. INTERNAL with the first violation found. O(num_blocks).
  absl::Status CheckInvariants(std::span<const Sequence* const> holders) const;

 private:
  static constexpr int32_t kNil = -1;

  struct Block {
    int32_t ref = 0;
    int32_t lru_prev = kNil;
    int32_t lru_next = kNil;
    bool hashed = false;  // registered in cached_ under `hash`
    BlockHash hash = 0;
    BlockHash parent = 0;  // hash of the block before it (kRootBlockHash for the first)
  };

  bool AllocateSlotsSlow(Sequence& seq, int num_new_tokens);
  void RegisterFullBlocks(Sequence& seq);
  // Extends seq's hash memo to cover its first `n` full blocks.
  void EnsureHashes(Sequence& seq, int n);
  // Fills match_ with the cached blocks seq would reuse; returns how many of
  // them are evictable (ref 0). Requires seq to hold no blocks.
  int MatchPrefix(Sequence& seq);
  int32_t TakeBlock();
  void LruPushBack(int32_t b);
  void LruRemove(int32_t b);
  std::span<const int32_t> BlockTokens(int32_t b) const {
    return std::span<const int32_t>(block_tokens_)
        .subspan(static_cast<size_t>(b) * block_size_, block_size_);
  }

  const int block_size_;
  const int num_blocks_;
  const bool enable_prefix_caching_;
  const HashFn hash_fn_;

  std::vector<Block> blocks_;
  std::vector<int32_t> free_list_;  // stack of free block ids
  int32_t lru_head_ = kNil;         // next to evict
  int32_t lru_tail_ = kNil;         // most recently freed
  int lru_size_ = 0;
  absl::flat_hash_map<BlockHash, int32_t> cached_;  // hash -> block
  std::vector<int32_t> block_tokens_;  // tokens of each registered block (prefix caching only)

  std::vector<int32_t> match_;     // scratch of MatchPrefix
  std::vector<BlockCopy> copies_;  // copy-on-write decided, not yet taken
  std::vector<KvEvent> events_;
  int64_t prefix_queries_ = 0;
  int64_t prefix_hits_ = 0;
};

}  // namespace tessera
