#include "router/prefix_index.h"

#include <cstdint>
#include <thread>
#include <vector>

#include "common/block_hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::router {
namespace {

using ::testing::ElementsAre;

// Chained hashes of a prompt of `blocks` blocks of 4 tokens starting at
// token `first` (the workers' and the router's real hash function).
std::vector<uint64_t> Prompt(int blocks, int32_t first = 100) {
  std::vector<int32_t> tokens(blocks * 4);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = first + static_cast<int32_t>(i);
  return HashFullBlocks(tokens, 4);
}

std::vector<uint64_t> Slice(const std::vector<uint64_t>& v, size_t begin, size_t end) {
  return std::vector<uint64_t>(v.begin() + begin, v.begin() + end);
}

std::vector<int> Match(const PrefixIndex& index, const std::vector<uint64_t>& prompt,
                       const std::vector<WorkerSlot>& candidates) {
  std::vector<int> matched(candidates.size(), -1);
  index.MatchPrefix(prompt, candidates, matched);
  return matched;
}

TEST(PrefixIndexTest, EmptyIndexMatchesNothing) {
  PrefixIndex index;
  EXPECT_THAT(Match(index, Prompt(4), {0, 1}), ElementsAre(0, 0));
  EXPECT_EQ(index.size(), 0);
  EXPECT_EQ(index.BlockCount(0), 0);
  EXPECT_EQ(index.BlockCount(7), 0);  // unknown slot
}

TEST(PrefixIndexTest, StoreThenMatchLeadingBlocks) {
  PrefixIndex index;
  const std::vector<uint64_t> prompt = Prompt(8);
  index.Store(0, Slice(prompt, 0, 5));
  index.Store(1, Slice(prompt, 0, 2));
  EXPECT_THAT(Match(index, prompt, {0, 1, 2}), ElementsAre(5, 2, 0));
  EXPECT_EQ(index.BlockCount(0), 5);
  EXPECT_EQ(index.BlockCount(1), 2);
  EXPECT_EQ(index.size(), 5);  // the two shared hashes are indexed once
}

TEST(PrefixIndexTest, EmptyPromptOrCandidates) {
  PrefixIndex index;
  const std::vector<uint64_t> prompt = Prompt(3);
  index.Store(0, prompt);
  EXPECT_THAT(Match(index, {}, {0}), ElementsAre(0));
  EXPECT_THAT(Match(index, prompt, {}), ElementsAre());
}

TEST(PrefixIndexTest, StoreIsIdempotent) {
  PrefixIndex index;
  const std::vector<uint64_t> prompt = Prompt(4);
  index.Store(0, prompt);
  index.Store(0, prompt);
  index.Store(0, Slice(prompt, 1, 3));
  EXPECT_EQ(index.BlockCount(0), 4);
  EXPECT_EQ(index.size(), 4);
  EXPECT_THAT(Match(index, prompt, {0}), ElementsAre(4));
  // One eviction undoes it: no second copy was kept.
  index.Evict(0, Slice(prompt, 3, 4));
  EXPECT_THAT(Match(index, prompt, {0}), ElementsAre(3));
  EXPECT_EQ(index.BlockCount(0), 3);
}

TEST(PrefixIndexTest, PrefixStopsAtTheFirstGap) {
  PrefixIndex index;
  const std::vector<uint64_t> prompt = Prompt(6);
  // Slot 0 holds blocks 0, 1, 3, 4, 5 (block 2 is missing); slot 1 holds 0..5.
  index.Store(0, Slice(prompt, 0, 2));
  index.Store(0, Slice(prompt, 3, 6));
  index.Store(1, prompt);
  EXPECT_THAT(Match(index, prompt, {0, 1}), ElementsAre(2, 6));
  // A worker that lacks the first block matches nothing, whatever follows.
  index.Store(2, Slice(prompt, 1, 6));
  EXPECT_THAT(Match(index, prompt, {2, 0}), ElementsAre(0, 2));
}

TEST(PrefixIndexTest, SharedHashesAcrossWorkers) {
  PrefixIndex index;
  const std::vector<uint64_t> prompt = Prompt(4);
  for (WorkerSlot s = 0; s < 6; ++s) index.Store(s, Slice(prompt, 0, 1 + s % 4));
  EXPECT_EQ(index.size(), 4);
  EXPECT_THAT(Match(index, prompt, {0, 1, 2, 3, 4, 5}), ElementsAre(1, 2, 3, 4, 1, 2));
  // Evicting from one holder leaves the others' copies alone.
  index.Evict(3, Slice(prompt, 0, 1));
  EXPECT_THAT(Match(index, prompt, {0, 1, 2, 3, 4, 5}), ElementsAre(1, 2, 3, 0, 1, 2));
  EXPECT_EQ(index.size(), 4);
  EXPECT_EQ(index.BlockCount(3), 3);
}

TEST(PrefixIndexTest, EvictRemovesAndIgnoresUnknownHashes) {
  PrefixIndex index;
  const std::vector<uint64_t> prompt = Prompt(4);
  index.Store(0, prompt);
  index.Evict(0, Slice(prompt, 2, 4));
  EXPECT_THAT(Match(index, prompt, {0}), ElementsAre(2));
  EXPECT_EQ(index.BlockCount(0), 2);
  EXPECT_EQ(index.size(), 2);  // hashes nobody holds are gone
  const std::vector<uint64_t> other = Prompt(3, 9000);
  index.Evict(0, other);   // never stored
  index.Evict(0, prompt);  // partly already evicted
  index.Evict(5, prompt);  // unknown slot
  EXPECT_EQ(index.BlockCount(0), 0);
  EXPECT_EQ(index.size(), 0);
  EXPECT_THAT(Match(index, prompt, {0}), ElementsAre(0));
}

TEST(PrefixIndexTest, ResetReplacesOnlyThatSlot) {
  PrefixIndex index;
  const std::vector<uint64_t> a = Prompt(4, 100);
  const std::vector<uint64_t> b = Prompt(4, 5000);
  index.Store(0, a);
  index.Store(1, a);
  // Slot 0's snapshot: the first two blocks of `a` and all of `b`.
  std::vector<uint64_t> snapshot = Slice(a, 0, 2);
  snapshot.insert(snapshot.end(), b.begin(), b.end());
  index.Reset(0, snapshot);
  EXPECT_EQ(index.BlockCount(0), 6);
  EXPECT_EQ(index.BlockCount(1), 4);
  EXPECT_THAT(Match(index, a, {0, 1}), ElementsAre(2, 4));
  EXPECT_THAT(Match(index, b, {0, 1}), ElementsAre(4, 0));
  EXPECT_EQ(index.size(), 8);
  // An empty snapshot: the slot holds nothing.
  index.Reset(0, {});
  EXPECT_EQ(index.BlockCount(0), 0);
  EXPECT_THAT(Match(index, b, {0}), ElementsAre(0));
  EXPECT_EQ(index.size(), 4);
  // Reset of an unknown slot stores the snapshot.
  index.Reset(3, b);
  EXPECT_THAT(Match(index, b, {3, 0}), ElementsAre(4, 0));
}

TEST(PrefixIndexTest, ResetWithDuplicateHashesCountsThemOnce) {
  PrefixIndex index;
  const std::vector<uint64_t> a = Prompt(2);
  const std::vector<uint64_t> snapshot = {a[0], a[1], a[0], a[1]};
  index.Reset(0, snapshot);
  EXPECT_EQ(index.BlockCount(0), 2);
  index.Evict(0, a);
  EXPECT_EQ(index.BlockCount(0), 0);
  EXPECT_EQ(index.size(), 0);
}

TEST(PrefixIndexTest, RemoveWorkerForgetsItEntirely) {
  PrefixIndex index;
  const std::vector<uint64_t> prompt = Prompt(5);
  index.Store(0, prompt);
  index.Store(1, Slice(prompt, 0, 3));
  index.RemoveWorker(0);
  EXPECT_EQ(index.BlockCount(0), 0);
  EXPECT_EQ(index.size(), 3);
  EXPECT_THAT(Match(index, prompt, {0, 1}), ElementsAre(0, 3));
  index.RemoveWorker(0);  // again: nothing to do
  index.RemoveWorker(9);  // unknown
  // The slot number is reused by a new worker that starts empty.
  index.Store(0, Slice(prompt, 0, 1));
  EXPECT_THAT(Match(index, prompt, {0, 1}), ElementsAre(1, 3));
}

TEST(PrefixIndexTest, DuplicateAndLargeSlotCandidates) {
  PrefixIndex index;
  const std::vector<uint64_t> prompt = Prompt(4);
  const WorkerSlot big = 1u << 20;  // beyond the dense lookup table
  index.Store(big, Slice(prompt, 0, 3));
  index.Store(2, Slice(prompt, 0, 1));
  EXPECT_THAT(Match(index, prompt, {2, big, 2, 7}), ElementsAre(1, 3, 1, 0));
  EXPECT_THAT(Match(index, prompt, {1, 2, 1}), ElementsAre(0, 1, 0));
}

TEST(PrefixIndexTest, ConcurrentWritersAndReaders) {
  PrefixIndex index;
  const std::vector<uint64_t> prompt = Prompt(32);
  constexpr int kWriters = 4;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      const WorkerSlot slot = static_cast<WorkerSlot>(w);
      for (int round = 0; round < 200; ++round) {
        index.Store(slot, prompt);
        index.Evict(slot, Slice(prompt, 16, 32));
        index.Reset(slot, Slice(prompt, 0, 8));
      }
      index.Store(slot, Slice(prompt, 0, 4 + w));
    });
  }
  std::vector<int> matched(kWriters);
  std::vector<WorkerSlot> candidates = {0, 1, 2, 3};
  threads.emplace_back([&] {
    std::vector<int> m(kWriters);
    for (int i = 0; i < 2000; ++i) {
      index.MatchPrefix(prompt, candidates, m);
      for (int v : m) ASSERT_TRUE(v >= 0 && v <= 32) << v;
    }
  });
  for (std::thread& t : threads) t.join();
  // Each writer ended with Reset(first 8) followed by Store(first 4 + w).
  index.MatchPrefix(prompt, candidates, matched);
  EXPECT_THAT(matched, ElementsAre(8, 8, 8, 8));
  EXPECT_EQ(index.size(), 8);
}

}  // namespace
}  // namespace tessera::router
