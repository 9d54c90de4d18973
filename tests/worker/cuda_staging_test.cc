// The host side of the CUDA executor's staging (worker/exec/cuda_staging.h),
// without a GPU (label unit): which graph shape a decode step replays at, how
// wide its block table is packed and how much of the buffer goes up, and
// which rows the CPU sampler takes. With max_model_len 131072 in blocks of
// 16, a decode of contexts up to 700 tokens must not be shaped by the
// 8192-column table or the 256-partition grid of max_model_len.
#include "worker/exec/cuda_staging.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "worker/device/cuda_graph.h"

namespace tessera {
namespace {

constexpr int kBlockSize = 16;
constexpr int kMaxModelLen = 131072;
constexpr int kMaxBlocks = kMaxModelLen / kBlockSize;  // 8192

DecodeGraphShapes Shapes() {
  DecodeGraphShapes s;
  s.batches = DecodeGraphBuckets(256);
  s.contexts = DecodeContextBuckets(kMaxBlocks, ops::kDecodePartitionTokens / kBlockSize);
  s.block_size = kBlockSize;
  return s;
}

// A decode step: sequence i has context lens[i] (its new token at position
// lens[i] - 1), blocks 1000 * (i + 1) + j, a plan table as wide as the
// longest context needs.
v1::StepPlan Decode(const std::vector<int>& lens) {
  v1::StepPlan p;
  p.set_kind(v1::StepPlan::KIND_FORWARD);
  int width = 0, longest = 0;
  for (int len : lens) {
    width = std::max(width, (len + kBlockSize - 1) / kBlockSize);
    longest = std::max(longest, len);
  }
  p.set_max_blocks_per_seq(width);
  p.set_max_query_len(1);
  p.set_max_seq_len(longest);
  p.add_query_start_loc(0);
  for (size_t i = 0; i < lens.size(); ++i) {
    const int pos = lens[i] - 1;
    const int32_t base = 1000 * static_cast<int32_t>(i + 1);
    p.add_token_ids(7 + static_cast<int32_t>(i));
    p.add_positions(pos);
    p.add_slot_mapping(int64_t{base + pos / kBlockSize} * kBlockSize + pos % kBlockSize);
    p.add_query_start_loc(static_cast<int32_t>(i + 1));
    p.add_seq_lens(lens[i]);
    for (int j = 0; j < width; ++j) p.add_block_tables(base + j);
    p.add_logits_indices(static_cast<int32_t>(i));
  }
  return p;
}

TEST(DecodeContextBucketsTest, DoublingFromOnePartitionToTheMax) {
  const std::vector<int> c = DecodeContextBuckets(kMaxBlocks, 32);
  EXPECT_EQ(c, (std::vector<int>{32, 64, 128, 256, 512, 1024, 2048, 4096, 8192}));
  EXPECT_EQ(DecodeContextBuckets(100, 32), (std::vector<int>{32, 64, 100}));
  EXPECT_EQ(DecodeContextBuckets(10, 32), (std::vector<int>{10}));  // min clamped to the max
  EXPECT_EQ(DecodeContextBuckets(5, 0), (std::vector<int>{1, 2, 4, 5}));
  EXPECT_TRUE(DecodeContextBuckets(0, 32).empty());
  for (int blocks = 1; blocks <= kMaxBlocks; blocks += 37) {
    const int bucket = BucketFor(c, blocks);
    ASSERT_GE(bucket, blocks);
    EXPECT_TRUE(bucket == 32 || bucket < 2 * blocks) << blocks << " -> " << bucket;
  }
}

TEST(ChooseDecodeGraphTest, TheShapeFollowsTheLongestContextNotMaxModelLen) {
  const auto key = ChooseDecodeGraph(Decode({100, 700, 20}), Shapes());
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->batch, 4);
  EXPECT_EQ(key->context_blocks, 64);  // 700 tokens = 44 blocks -> bucket 64
  // Short contexts share the smallest bucket: one split-K partition.
  EXPECT_EQ(ChooseDecodeGraph(Decode({1, 5}), Shapes())->context_blocks, 32);
  EXPECT_EQ(ChooseDecodeGraph(Decode({512}), Shapes())->context_blocks, 32);
  EXPECT_EQ(ChooseDecodeGraph(Decode({513}), Shapes())->context_blocks, 64);
  EXPECT_EQ(ChooseDecodeGraph(Decode({kMaxModelLen}), Shapes())->context_blocks, kMaxBlocks);
}

TEST(ChooseDecodeGraphTest, OtherStepsRunEagerly) {
  EXPECT_FALSE(ChooseDecodeGraph(Decode({kMaxModelLen + 1}), Shapes()).has_value());
  EXPECT_FALSE(ChooseDecodeGraph(Decode(std::vector<int>(257, 9)), Shapes()).has_value());
  EXPECT_FALSE(ChooseDecodeGraph(v1::StepPlan(), Shapes()).has_value());
  v1::StepPlan swapped = Decode({10, 20});
  swapped.set_logits_indices(0, 1);
  swapped.set_logits_indices(1, 0);
  EXPECT_FALSE(ChooseDecodeGraph(swapped, Shapes()).has_value());
  v1::StepPlan chunk = Decode({10, 20});  // the second sequence computes 2 tokens
  chunk.set_query_start_loc(2, 3);
  chunk.set_max_query_len(2);
  chunk.add_token_ids(1);
  chunk.add_positions(19);
  chunk.add_slot_mapping(5);
  EXPECT_FALSE(ChooseDecodeGraph(chunk, Shapes()).has_value());
  EXPECT_FALSE(ChooseDecodeGraph(Decode({10}), DecodeGraphShapes()).has_value());
}

TEST(PackPaddedDecodeTest, PacksTheBucketsWidthAndUploadsOnlyThat) {
  const v1::StepPlan plan = Decode({100, 700, 20});
  const DecodeGraphKey key = *ChooseDecodeGraph(plan, Shapes());
  // The executor's buffers are sized for the widest graph.
  const InputLayout layout = InputLayout::For(256, 256, kMaxBlocks);
  std::vector<int32_t> host(layout.total, -7);
  const StagedBatch s = PackPaddedDecode(&plan, key, kBlockSize, layout, host.data());

  EXPECT_EQ(s.tokens, 4);
  EXPECT_EQ(s.seqs, 4);
  EXPECT_EQ(s.logits_rows, 4);
  EXPECT_EQ(s.width, 64);
  EXPECT_EQ(s.max_query_len, 1);
  // The split-K grid: 1024 tokens = 2 partitions, not 131072 = 256.
  EXPECT_EQ(s.max_seq_len, 64 * kBlockSize);
  EXPECT_EQ(s.num_decodes, 4);
  EXPECT_EQ(s.used_int32s, layout.block_tables + 4 * 64);
  // 1 KiB of block table instead of 4 rows x 8192 columns (128 KiB).
  EXPECT_LT(s.used_int32s * 4, 2 * 1024 + layout.block_tables * 4);

  const auto* slots = reinterpret_cast<const int64_t*>(host.data() + layout.slot);
  const int32_t* tables = host.data() + layout.block_tables;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(slots[i], plan.slot_mapping(i));
    EXPECT_EQ(host[layout.token_ids + i], plan.token_ids(i));
    EXPECT_EQ(host[layout.positions + i], plan.positions(i));
    EXPECT_EQ(host[layout.seq_lens + i], plan.seq_lens(i));
    for (int j = 0; j < 64; ++j) {
      // The plan's 44 columns, then block 0 (beyond every context).
      EXPECT_EQ(tables[i * 64 + j], j < 44 ? plan.block_tables(i * 44 + j) : 0) << i << "," << j;
    }
  }
  // The padding row: nothing stored, a one-token context in block 0.
  EXPECT_EQ(slots[3], -1);
  EXPECT_EQ(host[layout.token_ids + 3], 0);
  EXPECT_EQ(host[layout.positions + 3], 0);
  EXPECT_EQ(host[layout.seq_lens + 3], 1);
  for (int j = 0; j < 64; ++j) EXPECT_EQ(tables[3 * 64 + j], 0);
  for (int i = 0; i <= 4; ++i) EXPECT_EQ(host[layout.qsl + i], i);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(host[layout.logits_indices + i], i);
  // Nothing past the used prefix was written.
  EXPECT_EQ(host[s.used_int32s], -7);
}

TEST(PackPaddedDecodeTest, AWiderPlanTableIsCutToTheBucket) {
  v1::StepPlan plan = Decode({30});  // 2 blocks of context...
  plan.set_max_blocks_per_seq(40);   // ...in a plan table 40 wide
  for (int j = 2; j < 40; ++j) plan.add_block_tables(5000 + j);
  const InputLayout layout = InputLayout::For(8, 8, 64);
  std::vector<int32_t> host(layout.total, -7);
  const StagedBatch s =
      PackPaddedDecode(&plan, DecodeGraphKey{1, 32}, kBlockSize, layout, host.data());
  EXPECT_EQ(s.used_int32s, layout.block_tables + 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(host[layout.block_tables + j], plan.block_tables(j));
  EXPECT_EQ(host[layout.block_tables + 32], -7);
}

TEST(PackPaddedDecodeTest, AllPaddingForWarmUps) {
  const InputLayout layout = InputLayout::For(256, 256, kMaxBlocks);
  std::vector<int32_t> host(layout.total, -7);
  const StagedBatch s =
      PackPaddedDecode(nullptr, DecodeGraphKey{256, kMaxBlocks}, kBlockSize, layout, host.data());
  EXPECT_EQ(s.max_seq_len, kMaxModelLen);
  EXPECT_EQ(s.used_int32s, layout.total);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(host[layout.seq_lens + i], 1);
}

TEST(InputLayoutTest, SlotsAlignedFirstTablesLast) {
  const InputLayout l = InputLayout::For(2048, 256, 8192);
  EXPECT_EQ(l.slot, 0);
  EXPECT_EQ(l.token_ids, 2 * 2048);  // int64 slots take two int32s each
  EXPECT_EQ(l.positions, l.token_ids + 2048);
  EXPECT_EQ(l.logits_indices, l.positions + 2048);
  EXPECT_EQ(l.qsl, l.logits_indices + 2048);
  EXPECT_EQ(l.seq_lens, l.qsl + 257);
  EXPECT_EQ(l.block_tables, l.seq_lens + 256);
  EXPECT_EQ(l.total, l.block_tables + 256 * 8192);
}

TEST(PackDenseTest, CopiesThePlanAndCountsItsDecodes) {
  v1::StepPlan plan = Decode({10, 20});
  // A third sequence: a 3-token prefill chunk.
  plan.set_max_query_len(3);
  for (int pos = 0; pos < 3; ++pos) {
    plan.add_token_ids(100 + pos);
    plan.add_positions(pos);
    plan.add_slot_mapping(pos);
  }
  plan.add_query_start_loc(5);
  plan.add_seq_lens(3);
  plan.add_block_tables(9);
  plan.add_block_tables(0);
  plan.add_logits_indices(4);
  ASSERT_TRUE(CheckPlanShape(plan).ok());
  const InputLayout layout = InputLayout::For(16, 4, 8);
  std::vector<int32_t> host(layout.total, -7);
  const StagedBatch s = PackDense(plan, layout, host.data());
  EXPECT_EQ(s.tokens, 5);
  EXPECT_EQ(s.seqs, 3);
  EXPECT_EQ(s.width, 2);
  EXPECT_EQ(s.logits_rows, 3);
  EXPECT_EQ(s.num_decodes, 2);
  EXPECT_EQ(s.max_query_len, 3);
  EXPECT_EQ(s.used_int32s, layout.block_tables + 3 * 2);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(host[layout.block_tables + i], plan.block_tables(i));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(host[layout.token_ids + i], plan.token_ids(i));
  EXPECT_EQ(host[layout.logits_indices + 2], 4);
  EXPECT_EQ(host[s.used_int32s], -7);
}

TEST(CheckPlanShapeTest, NamesTheCounts) {
  v1::StepPlan plan = Decode({10, 20});
  plan.add_positions(3);
  const absl::Status s = CheckPlanShape(plan);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("2 tokens, 3 positions"), std::string::npos) << s;
}

TEST(CountDecodesTest, OnlySequencesOfOneRowAndNoPaddingRows) {
  EXPECT_EQ(CountDecodes(std::vector<int32_t>{0, 1, 2, 5}, 5), 2);
  EXPECT_EQ(CountDecodes(std::vector<int32_t>{0, 4, 9}, 9), 0);    // prefill only
  EXPECT_EQ(CountDecodes(std::vector<int32_t>{0, 0, 1}, 1), 1);    // an empty sequence
  EXPECT_EQ(CountDecodes(std::vector<int32_t>{0, 4, 9}, 12), -1);  // rows 9..11 are padding
  EXPECT_EQ(CountDecodes(std::vector<int32_t>{0}, 0), 0);
  EXPECT_EQ(CountDecodes(std::vector<int32_t>{}, 0), -1);
}

TEST(CpuSampledRowsTest, PenaltiesAndTopLogprobsGoToTheCpu) {
  SamplingParams plain, logprobs, repetition, presence, frequency;
  logprobs.logprobs = 2;
  repetition.repetition_penalty = 1.1f;
  presence.presence_penalty = 0.5f;
  frequency.frequency_penalty = -0.5f;
  std::vector<SamplingRow> rows(7);
  const SamplingParams* params[] = {&plain,    &logprobs, &plain,    &repetition,
                                    &presence, &plain,    &frequency};
  for (int i = 0; i < 7; ++i) rows[i].params = params[i];
  EXPECT_EQ(CpuSampledRows(rows), (std::vector<int32_t>{1, 3, 4, 6}));
  EXPECT_TRUE(CpuSampledRows(std::span<const SamplingRow>()).empty());
}

}  // namespace
}  // namespace tessera
