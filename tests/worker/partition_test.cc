// Tests of worker/model/partition.h: tensor-parallel partitioning of a
// model's heads, KV heads, MLP and vocabulary.
#include "worker/model/partition.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/model/dummy_presets.h"

namespace tessera {
namespace {

TEST(PartitionTest, EvenSplit) {
  EXPECT_EQ(EvenSplit(10, 1, 0), (Range{0, 10}));
  EXPECT_EQ(EvenSplit(10, 2, 1), (Range{5, 10}));
  EXPECT_EQ(EvenSplit(10, 3, 0), (Range{0, 4}));
  EXPECT_EQ(EvenSplit(10, 3, 1), (Range{4, 7}));
  EXPECT_EQ(EvenSplit(10, 3, 2), (Range{7, 10}));
  EXPECT_EQ(EvenSplit(2, 4, 1), (Range{1, 2}));
  EXPECT_EQ(EvenSplit(2, 4, 3), (Range{2, 2}));
  EXPECT_EQ(EvenSplit(2, 4, 3).size(), 0);
  // The ranges tile [0, n) for any n and world.
  for (int64_t n = 0; n < 40; ++n) {
    for (int world = 1; world <= 9; ++world) {
      int64_t next = 0;
      for (int rank = 0; rank < world; ++rank) {
        Range r = EvenSplit(n, world, rank);
        EXPECT_EQ(r.begin, next);
        EXPECT_GE(r.size(), n / world);
        EXPECT_LE(r.size(), n / world + 1);
        next = r.end;
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST(PartitionTest, EvenTensorParallel) {
  auto tiny = DummyModelConfig("tiny");  // 4 heads, 2 KV heads, inter 192, vocab 512
  ASSERT_TRUE(tiny.ok());
  auto r0 = PartitionForRank(*tiny, 2, 0);
  auto r1 = PartitionForRank(*tiny, 2, 1);
  ASSERT_TRUE(r0.ok() && r1.ok());
  EXPECT_EQ(r0->kv_heads, (Range{0, 1}));
  EXPECT_EQ(r0->q_heads, (Range{0, 2}));
  EXPECT_EQ(r1->kv_heads, (Range{1, 2}));
  EXPECT_EQ(r1->q_heads, (Range{2, 4}));
  EXPECT_EQ(r0->intermediate, (Range{0, 96}));
  EXPECT_EQ(r1->intermediate, (Range{96, 192}));
  EXPECT_EQ(r0->vocab, (Range{0, 256}));
  EXPECT_EQ(r1->vocab, (Range{256, 512}));

  auto whole = PartitionForRank(*tiny, 1, 0);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->kv_heads, (Range{0, 2}));
  EXPECT_EQ(whole->q_heads, (Range{0, 4}));
  EXPECT_EQ(whole->intermediate, (Range{0, 192}));
  EXPECT_EQ(whole->vocab, (Range{0, 512}));
}

TEST(PartitionTest, UnevenTensorParallel) {
  auto smol = DummyModelConfig("smollm2-135m");  // 9 heads, 3 KV heads
  ASSERT_TRUE(smol.ok());
  auto r0 = PartitionForRank(*smol, 2, 0);
  auto r1 = PartitionForRank(*smol, 2, 1);
  ASSERT_TRUE(r0.ok() && r1.ok());
  EXPECT_EQ(r0->kv_heads, (Range{0, 2}));
  EXPECT_EQ(r0->q_heads, (Range{0, 6}));
  EXPECT_EQ(r1->kv_heads, (Range{2, 3}));
  EXPECT_EQ(r1->q_heads, (Range{6, 9}));
  EXPECT_EQ(r0->intermediate, (Range{0, 768}));
  EXPECT_EQ(r1->intermediate, (Range{768, 1536}));
  EXPECT_EQ(r0->vocab, (Range{0, 24576}));
  EXPECT_EQ(r1->vocab, (Range{24576, 49152}));

  // stories260K's shape: intermediate 172 at TP=3 splits 58/57/57.
  ModelConfig c = *smol;
  c.intermediate_size = 172;
  auto s2 = PartitionForRank(c, 3, 2);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->kv_heads, (Range{2, 3}));
  EXPECT_EQ(s2->intermediate, (Range{115, 172}));
}

TEST(PartitionTest, UnsplittableConfig) {
  ModelConfig c = *DummyModelConfig("tiny");
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  auto p = PartitionForRank(c, 8, 0);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(),
            "num_key_value_heads (4) must be at least the tensor-parallel size (8)");

  EXPECT_FALSE(PartitionForRank(c, 0, 0).ok());
  EXPECT_FALSE(PartitionForRank(c, 2, 2).ok());
  EXPECT_FALSE(PartitionForRank(c, 2, -1).ok());
}

}  // namespace
}  // namespace tessera
