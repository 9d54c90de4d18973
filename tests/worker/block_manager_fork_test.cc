// BlockManager::Fork (parallel sampling): shared blocks by reference count,
// copy-on-write of a shared partial last block, freeing and preempting forked
// sequences, and the invariants that hold throughout.
#include <memory>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/engine/block_manager.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int kBlockSize = 4;

CacheConfig Cache(int num_blocks, bool prefix_caching = true) {
  CacheConfig c;
  c.block_size = kBlockSize;
  c.num_blocks = num_blocks;
  c.enable_prefix_caching = prefix_caching;
  return c;
}

std::vector<int32_t> Range(int32_t first, int n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

void ExpectInvariants(const BlockManager& bm, std::vector<const Sequence*> holders) {
  const absl::Status s = bm.CheckInvariants(holders);
  EXPECT_TRUE(s.ok()) << s;
}

// A prefilled parent with n choices that has sampled its first token, and
// its n - 1 forks, each RUNNING with a first token of its own.
struct Family {
  std::unique_ptr<Sequence> parent;
  std::vector<std::unique_ptr<Sequence>> forks;

  std::vector<const Sequence*> all() const {
    std::vector<const Sequence*> v = {parent.get()};
    for (const auto& f : forks) v.push_back(f.get());
    return v;
  }
};

Family Forked(BlockManager& bm, std::vector<int32_t> prompt, int n) {
  SamplingParams params;
  params.max_tokens = 16;
  params.n = n;
  Family f;
  f.parent = std::make_unique<Sequence>("req", SeqId(1), std::move(prompt), params);
  Sequence& p = *f.parent;
  EXPECT_TRUE(p.fork_pending());
  const int hit = bm.GetCachedPrefixTokens(p);
  EXPECT_TRUE(bm.AllocateSlots(p, p.num_tokens() - hit));
  p.set_num_computed_tokens(p.num_tokens());
  bm.CacheComputedBlocks(p);
  p.SetRunning();
  p.AppendToken(500);
  for (int c = 1; c < n; ++c) {
    std::unique_ptr<Sequence> child = Sequence::ForkOf(p, c);
    bm.Fork(p, *child);
    child->SetRunning();
    child->AppendToken(500 + c);
    f.forks.push_back(std::move(child));
  }
  p.ClearForkPending();
  return f;
}

// One decode step of `seq`: room for its last token, which is then computed.
bool Decode(BlockManager& bm, Sequence& seq) {
  if (!bm.AllocateSlots(seq, 1)) return false;
  seq.set_num_computed_tokens(seq.num_tokens());
  bm.CacheComputedBlocks(seq);
  return true;
}

TEST(BlockManagerForkTest, ForkSharesEveryBlockWithItsChoices) {
  BlockManager bm(Cache(16));
  Family f = Forked(bm, Range(0, 10), /*n=*/3);  // blocks [0..3] [4..7] [8 9 _ _]
  ASSERT_EQ(f.parent->block_table().size(), 3u);
  for (const auto& child : f.forks) {
    EXPECT_EQ(child->block_table(), f.parent->block_table());
    EXPECT_EQ(child->num_computed_tokens(), 10);
    EXPECT_EQ(child->num_tokens(), 11);
    EXPECT_EQ(child->num_cached_tokens(), f.parent->num_cached_tokens());
    EXPECT_EQ(child->rng_seed(), f.parent->choice_seed(child->choice_index()));
  }
  for (int32_t b : f.parent->block_table()) EXPECT_EQ(bm.ref_count(b), 3);
  EXPECT_EQ(bm.num_used_blocks(), 3);
  ExpectInvariants(bm, f.all());
  // Every holder must be listed: the parent alone does not explain ref 3.
  EXPECT_FALSE(bm.CheckInvariants(std::vector<const Sequence*>{f.parent.get()}).ok());
}

TEST(BlockManagerForkTest, PartialLastBlockIsCopiedOnWriteUntilOneHolderIsLeft) {
  BlockManager bm(Cache(16));
  Family f = Forked(bm, Range(0, 10), /*n=*/3);
  const std::vector<int32_t> shared = f.parent->block_table();
  const int32_t tail = shared[2];

  ASSERT_TRUE(Decode(bm, *f.forks[0]));
  const int32_t copy1 = f.forks[0]->block_table()[2];
  EXPECT_NE(copy1, tail);
  EXPECT_THAT(bm.TakeCopies(), ElementsAre(BlockCopy{tail, copy1}));
  EXPECT_EQ(bm.ref_count(tail), 2);
  EXPECT_EQ(bm.ref_count(copy1), 1);
  EXPECT_EQ(bm.ref_count(shared[0]), 3);  // full blocks stay shared
  ExpectInvariants(bm, f.all());

  ASSERT_TRUE(Decode(bm, *f.forks[1]));
  const int32_t copy2 = f.forks[1]->block_table()[2];
  EXPECT_THAT(bm.TakeCopies(), ElementsAre(BlockCopy{tail, copy2}));
  EXPECT_EQ(bm.ref_count(tail), 1);
  ExpectInvariants(bm, f.all());

  // The last holder keeps the original: no copy.
  ASSERT_TRUE(Decode(bm, *f.parent));
  EXPECT_EQ(f.parent->block_table()[2], tail);
  EXPECT_THAT(bm.TakeCopies(), IsEmpty());
  EXPECT_EQ(bm.num_used_blocks(), 5);
  ExpectInvariants(bm, f.all());

  // Later steps are ordinary: no more copies.
  for (int t = 0; t < 6; ++t) {
    for (Sequence* s : {f.parent.get(), f.forks[0].get(), f.forks[1].get()}) {
      s->AppendToken(7);
      ASSERT_TRUE(Decode(bm, *s));
    }
  }
  EXPECT_THAT(bm.TakeCopies(), IsEmpty());
  ExpectInvariants(bm, f.all());
}

TEST(BlockManagerForkTest, PromptOfWholeBlocksNeedsNoCopy) {
  BlockManager bm(Cache(16, /*prefix_caching=*/false));
  Family f = Forked(bm, Range(0, 8), /*n=*/4);  // exactly 2 blocks
  for (Sequence* s : {f.parent.get(), f.forks[0].get(), f.forks[1].get(), f.forks[2].get()}) {
    ASSERT_TRUE(Decode(bm, *s));
    EXPECT_EQ(s->block_table().size(), 3u);
  }
  EXPECT_THAT(bm.TakeCopies(), IsEmpty());
  EXPECT_EQ(bm.ref_count(f.parent->block_table()[0]), 4);
  EXPECT_EQ(bm.num_used_blocks(), 2 + 4);
  ExpectInvariants(bm, f.all());
}

TEST(BlockManagerForkTest, FailedCopyChangesNothing) {
  BlockManager bm(Cache(3, /*prefix_caching=*/false));
  Family f = Forked(bm, Range(0, 10), /*n=*/2);  // all 3 blocks used, shared
  ASSERT_EQ(bm.num_free_blocks(), 0);
  const std::vector<int32_t> before = f.forks[0]->block_table();
  EXPECT_FALSE(bm.AllocateSlots(*f.forks[0], 1));
  EXPECT_EQ(f.forks[0]->block_table(), before);
  EXPECT_THAT(bm.TakeCopies(), IsEmpty());
  ExpectInvariants(bm, f.all());
  // Once the parent is gone, the child owns the tail alone and writes in place.
  bm.Free(*f.parent);
  ASSERT_TRUE(Decode(bm, *f.forks[0]));
  EXPECT_EQ(f.forks[0]->block_table(), before);
  EXPECT_THAT(bm.TakeCopies(), IsEmpty());
  ExpectInvariants(bm, {f.forks[0].get()});
}

TEST(BlockManagerForkTest, FreeingEveryChoiceReturnsEveryBlock) {
  for (const bool caching : {false, true}) {
    BlockManager bm(Cache(16, caching));
    Family f = Forked(bm, Range(0, 10), /*n=*/3);
    ASSERT_TRUE(Decode(bm, *f.forks[0]));
    bm.TakeCopies();
    bm.Free(*f.forks[0]);
    ExpectInvariants(bm, {f.parent.get(), f.forks[1].get()});
    bm.Free(*f.parent);
    bm.Free(*f.forks[1]);
    ExpectInvariants(bm, {});
    EXPECT_EQ(bm.num_used_blocks(), 0) << "prefix caching " << caching;
    for (int32_t b = 0; b < bm.num_blocks(); ++b) EXPECT_EQ(bm.ref_count(b), 0);
  }
}

TEST(BlockManagerForkTest, PreemptedChoiceRecomputesFromItsOwnTokens) {
  BlockManager bm(Cache(16));
  Family f = Forked(bm, Range(0, 10), /*n=*/2);
  Sequence& child = *f.forks[0];
  ASSERT_TRUE(Decode(bm, child));
  bm.TakeCopies();
  for (int t = 0; t < 3; ++t) {
    child.AppendToken(100 + t);
    ASSERT_TRUE(Decode(bm, child));
  }
  // Preempted by recompute: it drops its blocks (the shared ones lose a ref).
  bm.Free(child);
  child.SetPreempted();
  for (int32_t b : f.parent->block_table()) EXPECT_EQ(bm.ref_count(b), 1);
  ExpectInvariants(bm, {f.parent.get()});
  // Resumed: the prompt's full blocks come back from the cache (shared with
  // the parent again), the rest (its own tokens) is recomputed into new blocks.
  child.SetWaiting();
  const int hit = bm.GetCachedPrefixTokens(child);
  EXPECT_EQ(hit, 12);  // [0..3] [4..7] and its own full [8 9 501 100]
  ASSERT_TRUE(bm.AllocateSlots(child, child.num_tokens() - hit));
  child.SetRunning();
  EXPECT_EQ(child.block_table()[0], f.parent->block_table()[0]);
  EXPECT_EQ(bm.ref_count(f.parent->block_table()[0]), 2);
  EXPECT_THAT(bm.TakeCopies(), IsEmpty());
  ExpectInvariants(bm, f.all());
  EXPECT_EQ(child.all_tokens().size(), 14u);
  EXPECT_EQ(child.output_tokens()[0], 501);
}

}  // namespace
}  // namespace tessera
