// PagedAttention on CUDA against the CPU op on the same paged cache and
// metadata: split-K decodes (contexts that end on, just past and far beyond
// partition boundaries: up to 32 partitions), prefill chunks without and with
// a cached prefix, batches mixing both with padding rows, GQA ratios 1-8,
// head dims 64-256, block sizes 16, 32 and an odd 5, shuffled block ids.
//
// Bound: per sequence, max |err| <= rtol * max |ref| over its rows (outputs
// are convex combinations of V rows, so the row maximum is the natural scale;
// per sequence so that long-context rows, whose averages are small, are held
// to their own scale). float32: 1e-5 — the GPU sums scores, exp weights and
// V in another order (split-K partials, tiles) than the CPU's online softmax;
// float32 random-walk error over 32K terms stays ~1e-6 of the output scale.
// bfloat16 1e-2 / float16 5e-3: one rounding of the output (2^-9 / 2^-12);
// inputs are rounded before both sides see them.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "tests/kernels/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"

#if TESSERA_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace tessera {
namespace {

using testing::CudaTest;
using testing::DTypeTrace;
using testing::FloatDTypes;
using testing::NormwiseNear;
using testing::RandomFloats;
using testing::RelTol;
using testing::RoundTo;
using testing::SeedTrace;
using testing::TestSeed;
using testing::ToDevice;
using testing::ToDoubles;
using testing::ToHostFloat;
using testing::Upload;

struct SeqSpec {
  int q_len;    // query rows this step
  int seq_len;  // context after this step (cached prefix + new rows)
};

struct Case {
  std::vector<SeqSpec> seqs;
  int nh, nkv, hd, bs;
  int extra_rows = 0;  // padding rows past the last sequence
};

std::string CaseTrace(const Case& c) {
  std::string s = absl::StrCat("nh ", c.nh, " nkv ", c.nkv, " hd ", c.hd, " bs ", c.bs, " padding ",
                               c.extra_rows, " seqs");
  for (const SeqSpec& q : c.seqs) absl::StrAppend(&s, " (", q.q_len, "/", q.seq_len, ")");
  return s;
}

// The CPU side of a case: random q and caches (every slot random, so a wrong
// block or offset changes the result), shuffled block ids, metadata.
struct Batch {
  Tensor q, k_cache, v_cache;
  ops::AttentionMetadata md;
  int64_t n = 0;
  std::vector<int64_t> row_begin, row_end;  // per sequence
};

Batch MakeBatch(std::mt19937& rng, const Case& c, DType dtype) {
  Batch b;
  int64_t blocks_needed = 0, max_blocks = 0;
  for (const SeqSpec& s : c.seqs) {
    const int64_t nb = (s.seq_len + c.bs - 1) / c.bs;
    blocks_needed += nb;
    max_blocks = std::max(max_blocks, nb);
  }
  const int64_t num_blocks = blocks_needed + 5;
  std::vector<int32_t> pool(num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  const int64_t cols = max_blocks + 1;
  std::vector<int32_t> table(c.seqs.size() * cols, -1), qsl = {0}, lens;
  size_t next = 0;
  int max_q = 0, max_s = 0;
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    const SeqSpec& s = c.seqs[i];
    const int64_t nb = (s.seq_len + c.bs - 1) / c.bs;
    for (int64_t j = 0; j < nb; ++j) table[i * cols + j] = pool[next++];
    b.row_begin.push_back(qsl.back());
    qsl.push_back(qsl.back() + s.q_len);
    b.row_end.push_back(qsl.back());
    lens.push_back(s.seq_len);
    max_q = std::max(max_q, s.q_len);
    max_s = std::max(max_s, s.seq_len);
  }
  b.n = qsl.back() + c.extra_rows;
  b.q = RoundTo(RandomFloats(rng, {b.n, static_cast<int64_t>(c.nh) * c.hd}), dtype);
  b.k_cache = RoundTo(RandomFloats(rng, {num_blocks, c.bs, c.nkv, c.hd}), dtype);
  b.v_cache = RoundTo(RandomFloats(rng, {num_blocks, c.bs, c.nkv, c.hd}), dtype);
  b.md.query_start_loc = Tensor::FromInts(qsl, {static_cast<int64_t>(qsl.size())});
  b.md.seq_lens = Tensor::FromInts(lens, {static_cast<int64_t>(lens.size())});
  b.md.block_tables =
      Tensor::FromInts(table, {static_cast<int64_t>(c.seqs.size()), static_cast<int64_t>(cols)});
  b.md.max_query_len = max_q;
  b.md.max_seq_len = max_s;
  return b;
}

ops::AttentionMetadata UploadMetadata(const ops::AttentionMetadata& md) {
  ops::AttentionMetadata d;
  d.query_start_loc = Upload(md.query_start_loc);
  d.seq_lens = Upload(md.seq_lens);
  d.block_tables = Upload(md.block_tables);
  d.max_query_len = md.max_query_len;
  d.max_seq_len = md.max_seq_len;
  return d;
}

std::vector<double> Rows(const Tensor& t, int64_t begin, int64_t end) {
  const int64_t cols = t.dim(1);
  const float* p = t.data_as<const float>();
  return std::vector<double>(p + begin * cols, p + end * cols);
}

// Runs the case on both sides and compares sequence by sequence; padding
// rows must come back zero.
void CheckCase(std::mt19937& rng, const Case& c, DType dtype) {
  SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " ", CaseTrace(c)));
  Batch b = MakeBatch(rng, c, dtype);
  const float scale = 1.f / std::sqrt(static_cast<float>(c.hd));
  Tensor ref = Tensor::Empty(DType::kFloat32, {b.n, static_cast<int64_t>(c.nh) * c.hd});
  ASSERT_TRUE(ops::PagedAttention(b.q, b.k_cache, b.v_cache, b.md, c.nh, c.nkv, scale, ref).ok());
  Tensor out = Tensor::Empty(dtype, ref.shape(), Device::kCuda);
  const absl::Status st = ops::PagedAttention(ToDevice(b.q, dtype), ToDevice(b.k_cache, dtype),
                                              ToDevice(b.v_cache, dtype), UploadMetadata(b.md),
                                              c.nh, c.nkv, scale, out);
  ASSERT_TRUE(st.ok()) << st;
  Tensor got = ToHostFloat(out);
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    SCOPED_TRACE(absl::StrCat("sequence ", s, " (q_len ", c.seqs[s].q_len, ", seq_len ",
                              c.seqs[s].seq_len, ")"));
    if (b.row_end[s] == b.row_begin[s]) continue;
    Tensor got_rows = got.Slice(b.row_begin[s], b.row_end[s]);
    EXPECT_TRUE(NormwiseNear(got_rows, Rows(ref, b.row_begin[s], b.row_end[s]), RelTol(dtype)));
  }
  const int64_t cols = got.dim(1);
  for (int64_t i = b.n - c.extra_rows; i < b.n; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      ASSERT_EQ(got.data_as<float>()[i * cols + j], 0.f) << "padding row " << i;
    }
  }
}

class CudaAttentionTest : public CudaTest {};

TEST_F(CudaAttentionTest, DecodesAcrossSplitKPartitions) {
  const uint32_t seed = TestSeed(201);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const int p = ops::kDecodePartitionTokens;
  for (DType dtype : FloatDTypes()) {
    // Contexts ending just before, on and after partition boundaries.
    const std::vector<SeqSpec> boundaries = {{1, 1},     {1, 17},        {1, p - 1}, {1, p},
                                             {1, p + 1}, {1, 3 * p + 7}, {1, 5000}};
    CheckCase(rng, Case{boundaries, 8, 2, 128, 16}, dtype);
    CheckCase(rng, Case{{{1, 300}, {1, 2 * p}}, 32, 8, 64, 32}, dtype);   // GQA 4
    CheckCase(rng, Case{{{1, 77}, {1, 1100}}, 8, 1, 128, 16}, dtype);     // GQA 8
    CheckCase(rng, Case{{{1, 9}, {1, 700}}, 16, 16, 64, 5}, dtype);       // MHA, odd blocks
    CheckCase(rng, Case{{{1, 1000}, {1, 33}}, 4, 2, 256, 16, 2}, dtype);  // hd 256, padding
    CheckCase(rng, Case{{{1, 123}, {1, 520}}, 12, 4, 80, 16}, dtype);     // hd 80
    CheckCase(rng, Case{{{1, 600}}, 32, 2, 128, 16}, dtype);              // GQA 16: two chunks
  }
}

TEST_F(CudaAttentionTest, LongContextDecodeUsesManyPartitions) {
  const uint32_t seed = TestSeed(202);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (DType dtype : FloatDTypes()) {
    CheckCase(rng, Case{{{1, 16384}, {1, 9000}, {1, 1}}, 8, 2, 128, 16}, dtype);
  }
}

TEST_F(CudaAttentionTest, PrefillWithoutCachedPrefix) {
  const uint32_t seed = TestSeed(203);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (DType dtype : FloatDTypes()) {
    CheckCase(rng, Case{{{50, 50}, {2, 2}, {129, 129}}, 8, 2, 128, 16}, dtype);
    CheckCase(rng, Case{{{300, 300}}, 4, 4, 64, 32}, dtype);
    CheckCase(rng, Case{{{33, 33}, {17, 17}}, 16, 2, 256, 16}, dtype);
    CheckCase(rng, Case{{{70, 70}}, 6, 3, 96, 5}, dtype);
  }
}

TEST_F(CudaAttentionTest, PrefillOverACachedPrefix) {
  const uint32_t seed = TestSeed(204);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (DType dtype : FloatDTypes()) {
    // Chunks of a longer prompt (the prefix's K/V already in earlier blocks),
    // starting on and off block boundaries.
    CheckCase(rng, Case{{{37, 1100}, {2, 515}, {64, 64 + 16 * 10}}, 8, 2, 128, 16}, dtype);
    CheckCase(rng, Case{{{128, 4096}}, 32, 8, 128, 16}, dtype);
    CheckCase(rng, Case{{{5, 21}, {31, 100}}, 8, 8, 64, 5}, dtype);
  }
}

TEST_F(CudaAttentionTest, MixedBatchWithPaddingRows) {
  const uint32_t seed = TestSeed(205);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (DType dtype : FloatDTypes()) {
    CheckCase(rng,
              Case{{{1, 700}, {23, 23}, {1, 5}, {40, 900}, {0, 0}, {1, 2000}}, 8, 2, 128, 16, 3},
              dtype);
    CheckCase(rng, Case{{{16, 16}, {1, 1}, {1, 513}}, 4, 1, 64, 32, 5}, dtype);
  }
}

TEST_F(CudaAttentionTest, BadBlockIdsDoNotFault) {
  std::mt19937 rng(206);
  Case c{{{1, 40}, {20, 40}}, 4, 2, 64, 16};
  Batch b = MakeBatch(rng, c, DType::kFloat32);
  int32_t* table = b.md.block_tables.data_as<int32_t>();
  const int64_t cols = b.md.block_tables.dim(1);
  table[0] = -7;                                                 // decode's first block
  table[cols + 1] = static_cast<int32_t>(b.k_cache.dim(0)) + 3;  // prefill's second block
  Tensor out = Tensor::Empty(DType::kFloat32, {b.n, 4 * 64}, Device::kCuda);
  ASSERT_TRUE(ops::PagedAttention(Upload(b.q), Upload(b.k_cache), Upload(b.v_cache),
                                  UploadMetadata(b.md), 4, 2, 0.125f, out)
                  .ok());
  EXPECT_TRUE(SynchronizeCurrentStream().ok());
  Tensor got = ToHostFloat(out);
  for (int64_t i = 0; i < got.numel(); ++i) ASSERT_TRUE(std::isfinite(got.data_as<float>()[i]));
}

// The head shapes of Llama-3-8B and Qwen3-8B (32 query heads, 8 KV heads,
// head_dim 128, 16-token blocks): decodes at short and long contexts, a
// prefill, and a chunk over a cached prefix, in one batch.
TEST_F(CudaAttentionTest, ModelHeadShapes) {
  std::mt19937 rng(TestSeed(1604));
  for (DType dtype : {DType::kBFloat16, DType::kFloat32}) {
    CheckCase(
        rng,
        Case{{{1, 1}, {1, 511}, {1, 2048}, {1, 4100}, {300, 300}, {128, 1000}}, 32, 8, 128, 16},
        dtype);
  }
}

#if TESSERA_HAVE_CUDA
using Stream = testing::TestStream;

// A batch of prefill chunks only (md.num_decodes == 0) launches no decode
// kernel and takes no decode scratch; told nothing (-1), it does.
TEST_F(CudaAttentionTest, PrefillOnlyBatchTakesNoDecodeScratch) {
  std::mt19937 rng(TestSeed(208));
  const Case c{{{37, 1100}, {64, 64}}, 8, 2, 128, 16};
  Batch b = MakeBatch(rng, c, DType::kFloat32);
  b.md.num_decodes = 0;
  const float scale = 0.125f;
  Tensor ref = Tensor::Empty(DType::kFloat32, {b.n, 8 * 128});
  ASSERT_TRUE(ops::PagedAttention(b.q, b.k_cache, b.v_cache, b.md, 8, 2, scale, ref).ok());
  // A stream of its own, never destroyed (a later stream with the same
  // handle would find this one's scratch), so it starts without scratch.
  Stream& stream = *new Stream();
  ScopedCudaStream scoped(stream.get());
  Tensor q = Upload(b.q), k = Upload(b.k_cache), v = Upload(b.v_cache);
  ops::AttentionMetadata md = UploadMetadata(b.md);
  md.num_decodes = 0;
  Tensor out = Tensor::Empty(DType::kFloat32, ref.shape(), Device::kCuda);
  const int64_t before = ops::ScratchGeneration();
  ASSERT_TRUE(ops::PagedAttention(q, k, v, md, 8, 2, scale, out).ok());
  ASSERT_TRUE(SynchronizeCurrentStream().ok());
  EXPECT_EQ(ops::ScratchGeneration(), before);
  EXPECT_TRUE(NormwiseNear(ToHostFloat(out), ToDoubles(ref), RelTol(DType::kFloat32)));
  md.num_decodes = -1;
  ASSERT_TRUE(ops::PagedAttention(q, k, v, md, 8, 2, scale, out).ok());
  ASSERT_TRUE(SynchronizeCurrentStream().ok());
  EXPECT_GT(ops::ScratchGeneration(), before);
}

// The decode scratch never grows while its stream captures a graph (the
// allocation would break the capture; the free would strand graphs captured
// at the old address): the op says to warm up first and leaves no CUDA error
// behind; eagerly, the same call then grows it and is right.
TEST_F(CudaAttentionTest, DecodeScratchNeverGrowsDuringCapture) {
  std::mt19937 rng(TestSeed(209));
  const Case c{{{1, 700}, {1, 30}}, 8, 2, 128, 16};
  Batch b = MakeBatch(rng, c, DType::kFloat32);
  const float scale = 0.125f;
  Tensor ref = Tensor::Empty(DType::kFloat32, {b.n, 8 * 128});
  ASSERT_TRUE(ops::PagedAttention(b.q, b.k_cache, b.v_cache, b.md, 8, 2, scale, ref).ok());
  Stream& stream = *new Stream();  // never destroyed: see above
  ScopedCudaStream scoped(stream.get());
  Tensor q = Upload(b.q), k = Upload(b.k_cache), v = Upload(b.v_cache);
  const ops::AttentionMetadata md = UploadMetadata(b.md);
  Tensor out = Tensor::Empty(DType::kFloat32, ref.shape(), Device::kCuda);
  ASSERT_EQ(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal), cudaSuccess);
  const absl::Status captured = ops::PagedAttention(q, k, v, md, 8, 2, scale, out);
  cudaGraph_t graph = nullptr;
  (void)cudaStreamEndCapture(stream.get(), &graph);
  if (graph != nullptr) cudaGraphDestroy(graph);
  EXPECT_EQ(captured.code(), absl::StatusCode::kFailedPrecondition) << captured;
  EXPECT_NE(captured.message().find("while its stream captures a CUDA graph"), std::string::npos)
      << captured;
  EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess);
  ASSERT_TRUE(ops::PagedAttention(q, k, v, md, 8, 2, scale, out).ok());
  EXPECT_TRUE(NormwiseNear(ToHostFloat(out), ToDoubles(ref), RelTol(DType::kFloat32)));
}
#endif

TEST_F(CudaAttentionTest, UnsupportedHeadDimIsUnimplemented) {
  std::mt19937 rng(207);
  Batch b = MakeBatch(rng, Case{{{1, 4}}, 2, 1, 12, 16}, DType::kFloat32);
  Tensor out = Tensor::Empty(DType::kFloat32, {b.n, 24}, Device::kCuda);
  const absl::Status st = ops::PagedAttention(Upload(b.q), Upload(b.k_cache), Upload(b.v_cache),
                                              UploadMetadata(b.md), 2, 1, 0.3f, out);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented) << st;
}

}  // namespace
}  // namespace tessera
