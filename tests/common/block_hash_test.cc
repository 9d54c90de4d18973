#include "common/block_hash.h"

#include <vector>

#include "gtest/gtest.h"

namespace tessera {
namespace {

// Pinned values: the router and every worker, on any machine and any build,
// must compute these. Changing them breaks prefix-aware placement across a
// mixed-version cluster, so a change here needs a protocol version bump.
TEST(BlockHashTest, PinnedValues) {
  const std::vector<int32_t> block0 = {1, 2, 3, 4};
  const std::vector<int32_t> block1 = {5, 6, 7, 8};
  const BlockHash h0 = HashBlock(kRootBlockHash, block0);
  const BlockHash h1 = HashBlock(h0, block1);
  EXPECT_EQ(h0, 0x6fc1ebd4f4d6ea31ULL);
  EXPECT_EQ(h1, 0xe31356ba2da654a2ULL);
}

TEST(BlockHashTest, ChainDependsOnEveryEarlierBlock) {
  const std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<int32_t> b = {1, 2, 3, 9, 5, 6, 7, 8};  // differs in block 0 only
  const auto ha = HashFullBlocks(a, 4);
  const auto hb = HashFullBlocks(b, 4);
  ASSERT_EQ(ha.size(), 2u);
  ASSERT_EQ(hb.size(), 2u);
  EXPECT_NE(ha[0], hb[0]);
  EXPECT_NE(ha[1], hb[1]);  // same tokens in block 1, different parent
}

TEST(BlockHashTest, OnlyFullBlocksAreHashed) {
  const std::vector<int32_t> t = {1, 2, 3, 4, 5, 6, 7};
  const auto h = HashFullBlocks(t, 4);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0], HashBlock(kRootBlockHash, std::span<const int32_t>(t).first(4)));
  EXPECT_TRUE(HashFullBlocks(std::span<const int32_t>(t).first(3), 4).empty());
}

TEST(BlockHashTest, SamePrefixSameHashes) {
  std::vector<int32_t> a(64), b(70);
  for (int i = 0; i < 64; ++i) a[i] = b[i] = i * 7 + 3;
  for (int i = 64; i < 70; ++i) b[i] = i;
  EXPECT_EQ(HashFullBlocks(a, 16), HashFullBlocks(b, 16));
}

}  // namespace
}  // namespace tessera
