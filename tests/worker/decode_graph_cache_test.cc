// DecodeGraphCache's bookkeeping without a GPU (label unit): entries are
// found only at the generations they were captured at, a new generation
// drops the stale ones, the least recently used graph makes room, and a
// failed capture is remembered (the shape stays eager).
#include "worker/exec/decode_graph_cache.h"

#include "gtest/gtest.h"

namespace tessera {
namespace {

using Gen = DecodeGraphCache::Generations;

DecodeGraphCache::Entry At(Gen g, int64_t rows = 1) {
  DecodeGraphCache::Entry e;
  e.generations = g;
  e.logits = Tensor::Empty(DType::kFloat32, {rows, 4});  // tells entries apart
  return e;
}

TEST(DecodeGraphCacheTest, FindsOnlyAtTheCaptureGenerations) {
  DecodeGraphCache cache(8);
  const DecodeGraphKey key{4, 32};
  EXPECT_EQ(cache.Find(key, {0, 0}), nullptr);
  cache.Put(key, At({1, 2}));
  ASSERT_NE(cache.Find(key, {1, 2}), nullptr);
  EXPECT_EQ(cache.Find(key, {1, 3}), nullptr) << "the scratch moved since the capture";
  EXPECT_EQ(cache.Find(key, {2, 2}), nullptr) << "the activations moved since the capture";
  EXPECT_EQ(cache.Find(DecodeGraphKey{4, 64}, {1, 2}), nullptr) << "another context bucket";
  EXPECT_EQ(cache.Find(DecodeGraphKey{8, 32}, {1, 2}), nullptr) << "another batch bucket";
}

TEST(DecodeGraphCacheTest, ANewGenerationDropsTheStaleGraphs) {
  DecodeGraphCache cache(8);
  cache.Put({1, 32}, At({0, 0}));
  cache.Put({2, 32}, At({0, 0}));
  cache.Put({2, 64}, At({0, 1}));  // captured after the scratch grew
  EXPECT_EQ(cache.size(), 1);
  EXPECT_TRUE(cache.Contains({2, 64}));
  EXPECT_EQ(cache.evictions(), 0);
}

TEST(DecodeGraphCacheTest, TheLeastRecentlyUsedMakesRoom) {
  DecodeGraphCache cache(3);
  const Gen g{0, 0};
  cache.Put({1, 32}, At(g));
  cache.Put({2, 32}, At(g));
  cache.Put({4, 32}, At(g));
  ASSERT_NE(cache.Find({1, 32}, g), nullptr);  // {2, 32} is now the oldest
  cache.Put({1, 64}, At(g));
  EXPECT_EQ(cache.size(), 3);
  EXPECT_FALSE(cache.Contains({2, 32}));
  EXPECT_TRUE(cache.Contains({1, 32}));
  EXPECT_TRUE(cache.Contains({4, 32}));
  EXPECT_EQ(cache.evictions(), 1);
  // Replacing a shape's entry evicts nothing.
  cache.Put({4, 32}, At(g, 2));
  EXPECT_EQ(cache.size(), 3);
  EXPECT_EQ(cache.evictions(), 1);
  EXPECT_EQ(cache.Find({4, 32}, g)->logits.dim(0), 2);
}

TEST(DecodeGraphCacheTest, AFailedCaptureIsRememberedUntilTheGenerationMoves) {
  DecodeGraphCache cache(4);
  cache.Put({8, 32}, At({3, 3}));  // no graph: the capture failed
  DecodeGraphCache::Entry* e = cache.Find({8, 32}, {3, 3});
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->graph, nullptr);
  EXPECT_EQ(cache.Find({8, 32}, {4, 3}), nullptr);  // then capture is tried again
  cache.Clear();
  EXPECT_EQ(cache.size(), 0);
}

TEST(DecodeGraphCacheTest, CapacityIsAtLeastOne) {
  DecodeGraphCache cache(0);
  EXPECT_EQ(cache.capacity(), 1);
  cache.Put({1, 32}, At({0, 0}));
  cache.Put({2, 32}, At({0, 0}));
  EXPECT_EQ(cache.size(), 1);
  EXPECT_TRUE(cache.Contains({2, 32}));
}

}  // namespace
}  // namespace tessera
