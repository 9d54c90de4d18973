#include "worker/engine/block_manager.h"

#include <memory>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

constexpr int kBlockSize = 4;

CacheConfig Cache(int num_blocks, bool prefix_caching = true) {
  CacheConfig c;
  c.block_size = kBlockSize;
  c.num_blocks = num_blocks;
  c.enable_prefix_caching = prefix_caching;
  return c;
}

std::unique_ptr<Sequence> MakeSeq(std::vector<int32_t> prompt, int max_tokens = 8) {
  static int64_t next_id = 0;
  SamplingParams params;
  params.max_tokens = max_tokens;
  const int64_t id = next_id++;
  return std::make_unique<Sequence>(absl::StrCat("s", id), SeqId(id), std::move(prompt), params);
}

std::vector<int32_t> Range(int32_t first, int n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Allocates the whole sequence as one prefill, marks it computed and caches
// its full blocks, as a step of the engine would.
void Prefill(BlockManager& bm, Sequence& seq) {
  const int hit = bm.GetCachedPrefixTokens(seq);
  ASSERT_TRUE(bm.AllocateSlots(seq, seq.num_tokens() - hit));
  seq.set_num_computed_tokens(seq.num_tokens());
  bm.CacheComputedBlocks(seq);
}

void ExpectInvariants(const BlockManager& bm, std::vector<const Sequence*> holders) {
  const absl::Status s = bm.CheckInvariants(holders);
  EXPECT_TRUE(s.ok()) << s;
}

TEST(BlockManagerTest, AllocatesDistinctBlocksAndFreesThem) {
  BlockManager bm(Cache(8, /*prefix_caching=*/false));
  auto a = MakeSeq(Range(0, 9));  // 3 blocks
  auto b = MakeSeq(Range(100, 4));
  ASSERT_TRUE(bm.AllocateSlots(*a, 9));
  ASSERT_TRUE(bm.AllocateSlots(*b, 4));
  EXPECT_EQ(a->block_table().size(), 3u);
  EXPECT_EQ(b->block_table().size(), 1u);
  EXPECT_EQ(bm.num_used_blocks(), 4);
  EXPECT_EQ(bm.num_free_blocks(), 4);
  for (int32_t blk : a->block_table()) {
    EXPECT_EQ(bm.ref_count(blk), 1);
    EXPECT_NE(blk, b->block_table()[0]);
  }
  ExpectInvariants(bm, {a.get(), b.get()});
  bm.Free(*a);
  EXPECT_TRUE(a->block_table().empty());
  EXPECT_EQ(a->num_computed_tokens(), 0);
  EXPECT_EQ(bm.num_used_blocks(), 1);
  EXPECT_EQ(bm.num_evictable_blocks(), 0);
  ExpectInvariants(bm, {b.get()});
  EXPECT_THAT(bm.TakeEvents(), IsEmpty());
}

TEST(BlockManagerTest, DecodeGrowsBlockByBlock) {
  BlockManager bm(Cache(8));
  auto a = MakeSeq(Range(0, 3), /*max_tokens=*/8);
  ASSERT_TRUE(bm.AllocateSlots(*a, 3));
  a->set_num_computed_tokens(3);
  a->SetRunning();
  EXPECT_EQ(a->block_table().size(), 1u);
  for (int t = 0; t < 6; ++t) {
    a->AppendToken(50 + t);
    ASSERT_TRUE(bm.AllocateSlots(*a, 1));
    a->set_num_computed_tokens(a->num_computed_tokens() + 1);
    bm.CacheComputedBlocks(*a);
    EXPECT_EQ(a->block_table().size(), static_cast<size_t>((a->num_tokens() + 3) / 4));
    ExpectInvariants(bm, {a.get()});
  }
  // 9 tokens computed: 2 full blocks registered as they filled.
  const auto events = bm.TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, KvEvent::Type::kStored);
  EXPECT_EQ(events[1].type, KvEvent::Type::kStored);
  const auto hashes = HashFullBlocks(a->all_tokens(), kBlockSize);
  EXPECT_EQ(events[0].hash, hashes[0]);
  EXPECT_EQ(events[1].hash, hashes[1]);
}

TEST(BlockManagerTest, ReusesCachedPrefixAcrossSequences) {
  BlockManager bm(Cache(16));
  auto a = MakeSeq(Range(0, 10));  // blocks [0..3] [4..7] [8 9]
  Prefill(bm, *a);
  EXPECT_EQ(a->num_cached_tokens(), 0);
  const auto stored = bm.TakeEvents();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_THAT(bm.CachedBlockHashes(), UnorderedElementsAre(stored[0].hash, stored[1].hash));

  auto b = MakeSeq(Concat(Range(0, 8), {77, 78, 79}));
  EXPECT_EQ(bm.GetCachedPrefixTokens(*b), 8);
  ASSERT_TRUE(bm.AllocateSlots(*b, 3));
  EXPECT_EQ(b->num_computed_tokens(), 8);
  EXPECT_EQ(b->num_cached_tokens(), 8);
  ASSERT_EQ(b->block_table().size(), 3u);
  EXPECT_EQ(b->block_table()[0], a->block_table()[0]);
  EXPECT_EQ(b->block_table()[1], a->block_table()[1]);
  EXPECT_NE(b->block_table()[2], a->block_table()[2]);
  EXPECT_EQ(bm.ref_count(a->block_table()[0]), 2);
  EXPECT_EQ(bm.ref_count(a->block_table()[1]), 2);
  EXPECT_EQ(bm.ref_count(a->block_table()[2]), 1);
  EXPECT_EQ(bm.prefix_cache_queries(), 10 + 11);
  EXPECT_EQ(bm.prefix_cache_hits(), 8);
  ExpectInvariants(bm, {a.get(), b.get()});

  // A shared block outlives the first holder.
  bm.Free(*a);
  EXPECT_EQ(bm.ref_count(b->block_table()[0]), 1);
  ExpectInvariants(bm, {b.get()});
  bm.Free(*b);
  EXPECT_EQ(bm.num_used_blocks(), 0);
  ExpectInvariants(bm, {});
}

TEST(BlockManagerTest, HitStopsAtTheFirstDifferentBlock) {
  BlockManager bm(Cache(16));
  auto a = MakeSeq(Range(0, 13));
  Prefill(bm, *a);
  // Block 0 equal, block 1 different, block 2 equal tokens but a different chain.
  auto b = MakeSeq(Concat(Concat(Range(0, 4), {9, 9, 9, 9}), Range(8, 5)));
  EXPECT_EQ(bm.GetCachedPrefixTokens(*b), 4);
}

TEST(BlockManagerTest, LastTokenIsAlwaysRecomputed) {
  BlockManager bm(Cache(16));
  auto a = MakeSeq(Range(0, 12));
  Prefill(bm, *a);
  // The same 8 block-aligned tokens: only floor((8 - 1) / 4) = 1 block is reused.
  auto b = MakeSeq(Range(0, 8));
  EXPECT_EQ(bm.GetCachedPrefixTokens(*b), 4);
  ASSERT_TRUE(bm.AllocateSlots(*b, 4));
  EXPECT_EQ(b->num_computed_tokens(), 4);
  // The whole of a: 2 of its 3 blocks.
  auto c = MakeSeq(Range(0, 12));
  EXPECT_EQ(bm.GetCachedPrefixTokens(*c), 8);
  // One token: nothing to reuse.
  auto d = MakeSeq({0});
  EXPECT_EQ(bm.GetCachedPrefixTokens(*d), 0);
}

TEST(BlockManagerTest, FreedPrefixIsReusedThenEvictedUnderPressure) {
  BlockManager bm(Cache(6));
  auto a = MakeSeq(Range(0, 9));  // 2 full blocks + 1 token
  Prefill(bm, *a);
  const std::vector<int32_t> a_blocks = a->block_table();
  const auto stored = bm.TakeEvents();
  bm.Free(*a);
  // active -> cached: the two hashed blocks wait on the LRU, the tail is free.
  EXPECT_EQ(bm.num_evictable_blocks(), 2);
  EXPECT_EQ(bm.num_free_blocks(), 6);
  EXPECT_EQ(bm.num_used_blocks(), 0);
  EXPECT_EQ(bm.ref_count(a_blocks[0]), 0);
  ExpectInvariants(bm, {});

  // A later identical prefix takes them back: cached -> active.
  auto b = MakeSeq(Concat(Range(0, 8), {42}));
  Prefill(bm, *b);
  EXPECT_EQ(b->num_cached_tokens(), 8);
  EXPECT_EQ(b->block_table()[0], a_blocks[0]);
  EXPECT_EQ(b->block_table()[1], a_blocks[1]);
  EXPECT_EQ(bm.num_evictable_blocks(), 0);
  EXPECT_THAT(bm.TakeEvents(), IsEmpty()) << "nothing new stored";
  bm.Free(*b);
  ExpectInvariants(bm, {});

  // Pressure: an unrelated sequence needs the whole pool, so the cached
  // blocks are evicted (kEvicted) and handed out again.
  auto c = MakeSeq(Range(1000, 24));
  ASSERT_TRUE(bm.AllocateSlots(*c, 24));
  EXPECT_EQ(bm.num_free_blocks(), 0);
  EXPECT_EQ(bm.num_cached_blocks(), 0);
  EXPECT_THAT(bm.TakeEvents(),
              UnorderedElementsAre(KvEvent{KvEvent::Type::kEvicted, stored[0].hash},
                                   KvEvent{KvEvent::Type::kEvicted, stored[1].hash}));
  EXPECT_THAT(bm.CachedBlockHashes(), IsEmpty());
  ExpectInvariants(bm, {c.get()});
  bm.Free(*c);

  // The prefix is gone: no hit.
  auto d = MakeSeq(Range(0, 9));
  EXPECT_EQ(bm.GetCachedPrefixTokens(*d), 0);
}

TEST(BlockManagerTest, EvictsLeastRecentlyFreedAndTailBlocksFirst) {
  BlockManager bm(Cache(8));
  auto a = MakeSeq(Range(0, 9));    // 2 hashed blocks + tail
  auto b = MakeSeq(Range(100, 9));  // 2 hashed blocks + tail
  Prefill(bm, *a);
  Prefill(bm, *b);
  const std::vector<int32_t> a_blocks = a->block_table();
  const std::vector<int32_t> b_blocks = b->block_table();
  bm.Free(*a);  // LRU: a1, a0
  bm.Free(*b);  // LRU: a1, a0, b1, b0
  bm.TakeEvents();
  // 4 free blocks (2 never used + 2 tails), then evictions in LRU order.
  auto c = MakeSeq(Range(500, 4 * 4 + 4 * 3));  // 7 blocks: 4 free + 3 evicted
  ASSERT_TRUE(bm.AllocateSlots(*c, c->num_tokens()));
  const auto a_hashes = HashFullBlocks(a->all_tokens(), kBlockSize);
  const auto b_hashes = HashFullBlocks(b->all_tokens(), kBlockSize);
  EXPECT_THAT(bm.TakeEvents(), ElementsAre(KvEvent{KvEvent::Type::kEvicted, a_hashes[1]},
                                           KvEvent{KvEvent::Type::kEvicted, a_hashes[0]},
                                           KvEvent{KvEvent::Type::kEvicted, b_hashes[1]}));
  EXPECT_THAT(bm.CachedBlockHashes(), ElementsAre(b_hashes[0]));
  ExpectInvariants(bm, {c.get()});
}

// A degenerate hash: every block at the same depth collides.
BlockHash DepthHash(BlockHash parent, std::span<const int32_t>) { return parent + 1; }

TEST(BlockManagerTest, ForcedHashCollisionIsNotReused) {
  BlockManager bm(Cache(16), &DepthHash);
  auto a = MakeSeq(Range(0, 9));
  Prefill(bm, *a);
  EXPECT_THAT(bm.TakeEvents(),
              ElementsAre(KvEvent{KvEvent::Type::kStored, 1}, KvEvent{KvEvent::Type::kStored, 2}));
  // Same hashes (1, 2), different tokens: no hit.
  auto b = MakeSeq(Range(100, 9));
  EXPECT_EQ(bm.GetCachedPrefixTokens(*b), 0);
  Prefill(bm, *b);
  EXPECT_EQ(b->num_cached_tokens(), 0);
  EXPECT_EQ(bm.ref_count(a->block_table()[0]), 1);
  for (size_t i = 0; i < 2; ++i) EXPECT_NE(b->block_table()[i], a->block_table()[i]);
  // b's blocks could not be registered under the taken hashes.
  EXPECT_THAT(bm.TakeEvents(), IsEmpty());
  EXPECT_EQ(bm.num_cached_blocks(), 2);
  ExpectInvariants(bm, {a.get(), b.get()});
  // Equal first block, colliding second block: only the first is reused.
  auto c = MakeSeq(Concat(Range(0, 4), Range(200, 5)));
  EXPECT_EQ(bm.GetCachedPrefixTokens(*c), 4);
  // And a's own prefix still hits.
  auto d = MakeSeq(Range(0, 9));
  EXPECT_EQ(bm.GetCachedPrefixTokens(*d), 8);
}

TEST(BlockManagerTest, DuplicateBlockIsNotRegisteredTwice) {
  BlockManager bm(Cache(16));
  auto a = MakeSeq(Range(0, 9));
  auto b = MakeSeq(Range(0, 9));
  // Both admitted before either has computed anything: no hit for b.
  ASSERT_TRUE(bm.AllocateSlots(*a, 9));
  ASSERT_EQ(bm.GetCachedPrefixTokens(*b), 0);
  ASSERT_TRUE(bm.AllocateSlots(*b, 9));
  a->set_num_computed_tokens(9);
  b->set_num_computed_tokens(9);
  bm.CacheComputedBlocks(*a);
  bm.CacheComputedBlocks(*b);
  EXPECT_EQ(bm.TakeEvents().size(), 2u) << "one kStored per distinct hash";
  EXPECT_EQ(bm.num_cached_blocks(), 2);
  ExpectInvariants(bm, {a.get(), b.get()});
  // b's copies are plain blocks: freed straight to the free list.
  bm.Free(*b);
  EXPECT_EQ(bm.num_evictable_blocks(), 0);
  bm.Free(*a);
  EXPECT_EQ(bm.num_evictable_blocks(), 2);
  ExpectInvariants(bm, {});
}

TEST(BlockManagerTest, FailedAllocationChangesNothing) {
  BlockManager bm(Cache(4));
  auto a = MakeSeq(Range(0, 9));
  Prefill(bm, *a);
  bm.Free(*a);  // 2 evictable (hashed) + 2 free
  bm.TakeEvents();
  const int64_t queries = bm.prefix_cache_queries();
  // Same 8-token prefix + 9 more tokens: 2 hits + 3 new blocks, but taking
  // the 2 hits leaves only 2 blocks.
  auto b = MakeSeq(Concat(Range(0, 8), Range(300, 9)));
  ASSERT_EQ(bm.GetCachedPrefixTokens(*b), 8);
  EXPECT_FALSE(bm.AllocateSlots(*b, 9));
  EXPECT_TRUE(b->block_table().empty());
  EXPECT_EQ(b->num_computed_tokens(), 0);
  EXPECT_EQ(b->num_cached_tokens(), -1);
  EXPECT_EQ(bm.num_free_blocks(), 4);
  EXPECT_EQ(bm.num_evictable_blocks(), 2);
  EXPECT_EQ(bm.prefix_cache_queries(), queries);
  EXPECT_THAT(bm.TakeEvents(), IsEmpty());
  ExpectInvariants(bm, {});
  // Two new blocks do fit: the chunk of 8 tokens after the hit.
  ASSERT_TRUE(bm.AllocateSlots(*b, 8));
  EXPECT_EQ(b->block_table().size(), 4u);
  EXPECT_EQ(bm.num_free_blocks(), 0);
  // A running sequence that needs a block more fails without side effects.
  const std::vector<int32_t> before = b->block_table();
  b->set_num_computed_tokens(16);
  EXPECT_FALSE(bm.AllocateSlots(*b, 1));
  EXPECT_EQ(b->block_table(), before);
  ExpectInvariants(bm, {b.get()});
}

TEST(BlockManagerTest, PrefixCachingOffNeverHitsOrEmits) {
  BlockManager bm(Cache(16, /*prefix_caching=*/false));
  auto a = MakeSeq(Range(0, 9));
  Prefill(bm, *a);
  auto b = MakeSeq(Range(0, 9));
  EXPECT_EQ(bm.GetCachedPrefixTokens(*b), 0);
  Prefill(bm, *b);
  EXPECT_EQ(b->num_cached_tokens(), 0);
  bm.Free(*a);
  bm.Free(*b);
  EXPECT_EQ(bm.num_evictable_blocks(), 0);
  EXPECT_EQ(bm.num_cached_blocks(), 0);
  EXPECT_EQ(bm.prefix_cache_queries(), 0);
  EXPECT_THAT(bm.TakeEvents(), IsEmpty());
  EXPECT_THAT(bm.CachedBlockHashes(), IsEmpty());
}

TEST(BlockManagerTest, CheckInvariantsCatchesWrongHolders) {
  BlockManager bm(Cache(8));
  auto a = MakeSeq(Range(0, 9));
  auto b = MakeSeq(Range(0, 9));
  Prefill(bm, *a);
  Prefill(bm, *b);  // shares 2 blocks with a
  ExpectInvariants(bm, {a.get(), b.get()});
  const absl::Status missing = bm.CheckInvariants(std::vector<const Sequence*>{a.get()});
  EXPECT_EQ(missing.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(missing.message(), ::testing::HasSubstr("block tables hold it"));
  const absl::Status twice =
      bm.CheckInvariants(std::vector<const Sequence*>{a.get(), b.get(), a.get()});
  EXPECT_FALSE(twice.ok());
}

TEST(BlockManagerTest, SnapshotMatchesEventStream) {
  BlockManager bm(Cache(8));
  std::vector<BlockHash> live;
  auto apply = [&](const std::vector<KvEvent>& events) {
    for (const KvEvent& e : events) {
      if (e.type == KvEvent::Type::kStored) {
        live.push_back(e.hash);
      } else {
        live.erase(std::find(live.begin(), live.end(), e.hash));
      }
    }
  };
  for (int round = 0; round < 6; ++round) {
    auto s = MakeSeq(Range(round * 1000, 13));
    Prefill(bm, *s);
    bm.Free(*s);
    apply(bm.TakeEvents());
    EXPECT_THAT(bm.CachedBlockHashes(), UnorderedElementsAreArray(live));
  }
}

}  // namespace
}  // namespace tessera
