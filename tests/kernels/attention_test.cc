// PagedAttention on the CPU against a float64 reference: batches that mix a
// one-token decode, a prefill chunk attending to earlier cached blocks and a
// multi-block prefill; head dims 8/16/64/128; GQA ratios 1, 2, 4; block
// tables with shuffled (non-contiguous) block ids and padded rows.
//
// Error bound: max |err| <= 1e-4 * max |ref|. Each output is a convex
// combination of V rows (|v| <= 1): the float32 scores carry ~sqrt(hd) u
// relative error, exp and the running sums over <= a few hundred positions add
// a few u each, so the real error is ~1e-6; 1e-4 leaves margin yet any wrong
// block, position, head mapping or mask fails by O(0.1).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera {
namespace {

using testing::ExactlyEqual;
using ::testing::HasSubstr;
using testing::NormwiseNear;
using testing::RandomFloats;
using testing::SeedTrace;
using testing::TestSeed;

constexpr double kAttnTol = 1e-4;

struct SeqSpec {
  int q_len;    // new tokens this step
  int seq_len;  // context after this step (cached prefix + new)
};

// A batch with its cache filled with random values everywhere (unused blocks
// and slots too, so reading a wrong one changes the result).
struct Batch {
  int nh = 0, nkv = 0, hd = 0, bs = 0;
  std::vector<SeqSpec> seqs;
  std::vector<std::vector<int32_t>> tables;  // used block ids per sequence
  Tensor q, k_cache, v_cache;
  ops::AttentionMetadata md;
  int64_t n = 0;
};

Batch MakeBatch(std::mt19937& rng, std::vector<SeqSpec> seqs, int nh, int nkv, int hd, int bs,
                int64_t extra_rows = 0) {
  Batch b;
  b.nh = nh;
  b.nkv = nkv;
  b.hd = hd;
  b.bs = bs;
  b.seqs = std::move(seqs);
  int64_t blocks_needed = 0, max_blocks = 0;
  for (const SeqSpec& s : b.seqs) {
    const int64_t nb = (s.seq_len + bs - 1) / bs;
    blocks_needed += nb;
    max_blocks = std::max(max_blocks, nb);
    b.n += s.q_len;
  }
  b.n += extra_rows;
  // Shuffled block ids from a pool with spare (garbage) blocks.
  const int64_t num_blocks = blocks_needed + 7;
  std::vector<int32_t> pool(num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  const int64_t cols = max_blocks + 2;  // padded rows
  std::vector<int32_t> table_flat;
  std::vector<int32_t> qsl = {0}, lens;
  size_t next = 0;
  int max_q = 0, max_s = 0;
  for (size_t i = 0; i < b.seqs.size(); ++i) {
    const SeqSpec& s = b.seqs[i];
    const int64_t nb = (s.seq_len + bs - 1) / bs;
    std::vector<int32_t> used(pool.begin() + next, pool.begin() + next + nb);
    next += nb;
    b.tables.push_back(used);
    for (int64_t c = 0; c < cols; ++c) {
      // Padding: -1 for even sequences, a real (garbage) block id for odd ones.
      const int32_t pad = i % 2 == 0 ? -1 : pool.back();
      table_flat.push_back(c < nb ? used[c] : pad);
    }
    qsl.push_back(qsl.back() + s.q_len);
    lens.push_back(s.seq_len);
    max_q = std::max(max_q, s.q_len);
    max_s = std::max(max_s, s.seq_len);
  }
  const int64_t batch = static_cast<int64_t>(b.seqs.size());
  b.md.query_start_loc = Tensor::FromInts(qsl, {batch + 1});
  b.md.seq_lens = Tensor::FromInts(lens, {batch});
  b.md.block_tables = Tensor::FromInts(table_flat, {batch, cols});
  b.md.max_query_len = max_q;
  b.md.max_seq_len = max_s;
  b.k_cache = RandomFloats(rng, {num_blocks, bs, nkv, hd});
  b.v_cache = RandomFloats(rng, {num_blocks, bs, nkv, hd});
  b.q = RandomFloats(rng, {b.n, int64_t{nh} * hd});
  return b;
}

// Straightforward causal softmax attention in double, reading the cache
// through the block tables.
std::vector<double> AttentionRef(const Batch& b, double scale) {
  const int64_t row = int64_t{b.nh} * b.hd;
  std::vector<double> out(b.n * row, 0.0);
  const float* q = b.q.data_as<const float>();
  const float* kc = b.k_cache.data_as<const float>();
  const float* vc = b.v_cache.data_as<const float>();
  const int group = b.nh / b.nkv;
  int64_t start = 0;
  for (size_t s = 0; s < b.seqs.size(); ++s) {
    const SeqSpec& spec = b.seqs[s];
    for (int i = 0; i < spec.q_len; ++i) {
      const int64_t r = start + i;
      const int pos = spec.seq_len - spec.q_len + i;
      for (int h = 0; h < b.nh; ++h) {
        const int kvh = h / group;
        auto kv_at = [&](const float* cache, int t) {
          const int64_t block = b.tables[s][t / b.bs];
          return cache + ((block * b.bs + t % b.bs) * b.nkv + kvh) * b.hd;
        };
        std::vector<double> scores(pos + 1);
        double max_score = -std::numeric_limits<double>::infinity();
        for (int t = 0; t <= pos; ++t) {
          const float* key = kv_at(kc, t);
          double dot = 0;
          for (int d = 0; d < b.hd; ++d) dot += double{q[r * row + h * b.hd + d]} * key[d];
          scores[t] = dot * scale;
          max_score = std::max(max_score, scores[t]);
        }
        double denom = 0;
        for (double& sc : scores) denom += (sc = std::exp(sc - max_score));
        for (int t = 0; t <= pos; ++t) {
          const float* value = kv_at(vc, t);
          for (int d = 0; d < b.hd; ++d)
            out[r * row + h * b.hd + d] += scores[t] / denom * value[d];
        }
      }
    }
    start += spec.q_len;
  }
  return out;
}

absl::Status RunAttention(const Batch& b, float scale, Tensor& out) {
  return ops::PagedAttention(b.q, b.k_cache, b.v_cache, b.md, b.nh, b.nkv, scale, out);
}

TEST(PagedAttentionTest, MixedBatchMatchesFloat64Reference) {
  const uint32_t seed = TestSeed(31);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  // A decode over 37 cached tokens, a 20-token chunk after a 35-token cached
  // prefix, a fresh 40-token (multi-block) prefill, and a first-token decode.
  const std::vector<SeqSpec> seqs = {{1, 37}, {20, 55}, {40, 40}, {1, 1}};
  for (int hd : {8, 16, 64, 128}) {
    for (auto [nh, nkv] : {std::pair{4, 4}, std::pair{4, 2}, std::pair{8, 2}}) {
      for (int bs : {16, 5}) {
        SCOPED_TRACE(absl::StrCat("hd=", hd, " nh=", nh, " nkv=", nkv, " block_size=", bs));
        Batch b = MakeBatch(rng, seqs, nh, nkv, hd, bs);
        const float scale = 1.f / std::sqrt(static_cast<float>(hd));
        Tensor out = Tensor::Empty(DType::kFloat32, {b.n, int64_t{nh} * hd});
        ASSERT_TRUE(RunAttention(b, scale, out).ok());
        EXPECT_TRUE(NormwiseNear(out, AttentionRef(b, scale), kAttnTol));
      }
    }
  }
}

TEST(PagedAttentionTest, LargeScoresStayFinite) {
  // Scores of several hundred: exp without max subtraction would overflow.
  const uint32_t seed = TestSeed(32);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  Batch b = MakeBatch(rng, {{3, 50}, {1, 70}}, 4, 2, 64, 16);
  for (int64_t i = 0; i < b.q.numel(); ++i) b.q.data_as<float>()[i] *= 80.f;
  const float scale = 0.125f;
  Tensor out = Tensor::Empty(DType::kFloat32, {b.n, 4 * 64});
  ASSERT_TRUE(RunAttention(b, scale, out).ok());
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_TRUE(std::isfinite(out.data_as<float>()[i]));
  EXPECT_TRUE(NormwiseNear(out, AttentionRef(b, scale), kAttnTol));
}

TEST(PagedAttentionTest, RowsPastTheLastSequenceAreZeroed) {
  const uint32_t seed = TestSeed(33);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  Batch b = MakeBatch(rng, {{2, 9}, {1, 4}}, 2, 1, 16, 4, /*extra_rows=*/3);
  Tensor out = RandomFloats(rng, {b.n, 2 * 16});  // garbage that must be overwritten
  ASSERT_TRUE(RunAttention(b, 0.25f, out).ok());
  EXPECT_TRUE(NormwiseNear(out, AttentionRef(b, 0.25f), kAttnTol));
  for (int64_t i = 3 * 32; i < b.n * 32; ++i) ASSERT_EQ(out.data_as<float>()[i], 0.f);
}

TEST(PagedAttentionTest, ResultsDoNotDependOnTheThreadCount) {
  const uint32_t seed = TestSeed(34);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  Batch b = MakeBatch(rng, {{1, 100}, {64, 96}, {1, 33}}, 8, 2, 64, 16);
  Tensor one = Tensor::Empty(DType::kFloat32, {b.n, 8 * 64});
  Tensor many = Tensor::Empty(DType::kFloat32, {b.n, 8 * 64});
  ops::SetCpuThreads(1);
  ASSERT_TRUE(RunAttention(b, 0.125f, one).ok());
  ops::SetCpuThreads(3);
  ASSERT_TRUE(RunAttention(b, 0.125f, many).ok());
  ops::SetCpuThreads(0);
  EXPECT_TRUE(ExactlyEqual(many.data_as<float>(), one.data_as<float>(), one.numel()));
  EXPECT_TRUE(NormwiseNear(one, AttentionRef(b, 0.125), kAttnTol));
}

// KvStore then PagedAttention, compared with dense causal attention over
// contiguous K/V: checks that the two ops agree on the slot layout. The
// prefix is stored in an earlier "step", the chunk in this one.
TEST(PagedAttentionTest, AfterKvStoreMatchesDenseCausalAttention) {
  const uint32_t seed = TestSeed(35);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const int nh = 4, nkv = 1, hd = 16, bs = 8;
  const int prefix = 13, chunk = 11, seq_len = prefix + chunk;
  const int64_t row = int64_t{nkv} * hd;
  Tensor k_all = RandomFloats(rng, {seq_len, row});
  Tensor v_all = RandomFloats(rng, {seq_len, row});
  Tensor k_cache = RandomFloats(rng, {10, bs, nkv, hd});
  Tensor v_cache = RandomFloats(rng, {10, bs, nkv, hd});
  const std::vector<int32_t> table = {7, 2, 5};  // ceil(24 / 8) blocks, out of order
  auto store = [&](int begin, int end) {
    Tensor slots = Tensor::Empty(DType::kInt64, {end - begin});
    for (int t = begin; t < end; ++t) {
      slots.data_as<int64_t>()[t - begin] = int64_t{table[t / bs]} * bs + t % bs;
    }
    return ops::KvStore(k_all.Slice(begin, end), v_all.Slice(begin, end), slots, k_cache, v_cache);
  };
  ASSERT_TRUE(store(0, prefix).ok());
  ASSERT_TRUE(store(prefix, seq_len).ok());
  Tensor q = RandomFloats(rng, {chunk, int64_t{nh} * hd});
  ops::AttentionMetadata md;
  md.query_start_loc = Tensor::FromInts({0, chunk}, {2});
  md.seq_lens = Tensor::FromInts({seq_len}, {1});
  md.block_tables = Tensor::FromInts({7, 2, 5, -1}, {1, 4});
  md.max_query_len = chunk;
  md.max_seq_len = seq_len;
  const float scale = 0.25f;
  Tensor out = Tensor::Empty(DType::kFloat32, {chunk, int64_t{nh} * hd});
  ASSERT_TRUE(ops::PagedAttention(q, k_cache, v_cache, md, nh, nkv, scale, out).ok());

  std::vector<double> ref(out.numel(), 0.0);
  const float* qp = q.data_as<const float>();
  const float* kp = k_all.data_as<const float>();
  const float* vp = v_all.data_as<const float>();
  for (int i = 0; i < chunk; ++i) {
    for (int h = 0; h < nh; ++h) {
      const int pos = prefix + i;
      std::vector<double> w(pos + 1);
      double mx = -INFINITY, sum = 0;
      for (int t = 0; t <= pos; ++t) {
        double dot = 0;
        for (int d = 0; d < hd; ++d) dot += double{qp[(i * nh + h) * hd + d]} * kp[t * row + d];
        w[t] = dot * scale;
        mx = std::max(mx, w[t]);
      }
      for (double& x : w) sum += (x = std::exp(x - mx));
      for (int t = 0; t <= pos; ++t) {
        for (int d = 0; d < hd; ++d) ref[(i * nh + h) * hd + d] += w[t] / sum * vp[t * row + d];
      }
    }
  }
  EXPECT_TRUE(NormwiseNear(out, ref, kAttnTol));
}

void ExpectInvalid(const absl::Status& s, const std::string& detail) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("PagedAttention:")) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(detail)) << s;
}

TEST(PagedAttentionTest, RejectsBadMetadataAndShapes) {
  const uint32_t seed = TestSeed(36);
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  Tensor out;
  auto fresh = [&] {
    Batch b = MakeBatch(rng, {{2, 10}, {1, 6}}, 4, 2, 8, 4);
    out = Tensor::Empty(DType::kFloat32, {b.n, 32});
    return b;
  };
  {
    Batch b = fresh();
    b.md.block_tables.data_as<int32_t>()[1] = static_cast<int32_t>(b.k_cache.dim(0));  // used
    ExpectInvalid(RunAttention(b, 1.f, out), "block_tables[0, 1]");
  }
  {
    Batch b = fresh();
    b.md.seq_lens.data_as<int32_t>()[0] = 1;  // fewer than its 2 query rows
    ExpectInvalid(RunAttention(b, 1.f, out), "seq_lens[0] = 1");
  }
  {
    Batch b = fresh();
    b.md.seq_lens.data_as<int32_t>()[1] = 100;  // more than its table can hold
    b.md.max_seq_len = 100;
    ExpectInvalid(RunAttention(b, 1.f, out), "seq_lens[1] = 100");
  }
  {
    Batch b = fresh();
    b.md.query_start_loc.data_as<int32_t>()[2] = 4;  // past q's 3 rows
    ExpectInvalid(RunAttention(b, 1.f, out), "query_start_loc[2] = 4");
  }
  {
    Batch b = fresh();
    b.md.max_seq_len = 5;
    ExpectInvalid(RunAttention(b, 1.f, out), "max_seq_len");
  }
  {
    // num_decodes, when given, is the batch's count of one-row sequences
    // (the CUDA path skips its decode kernels on 0).
    Batch b = fresh();
    b.md.num_decodes = 1;
    EXPECT_TRUE(RunAttention(b, 1.f, out).ok());
    b.md.num_decodes = 0;
    ExpectInvalid(RunAttention(b, 1.f, out), "md.num_decodes = 0 but the batch has 1");
    b.md.num_decodes = 3;
    ExpectInvalid(RunAttention(b, 1.f, out), "md.num_decodes must be -1 (unknown) or in [0, 2]");
  }
  {
    // A prefill-only batch with padding rows may not claim num_decodes 0:
    // on CUDA nothing would zero the padding rows.
    Batch b = MakeBatch(rng, {{2, 9}, {3, 4}}, 4, 2, 8, 4, /*extra_rows=*/2);
    Tensor padded = Tensor::Empty(DType::kFloat32, {b.n, 32});
    b.md.num_decodes = 0;
    ExpectInvalid(RunAttention(b, 1.f, padded), "rows [5, 7) are padding");
    b.md.num_decodes = -1;
    EXPECT_TRUE(RunAttention(b, 1.f, padded).ok());
  }
  {
    Batch b = fresh();
    ExpectInvalid(ops::PagedAttention(b.q, b.k_cache, b.v_cache, b.md, 3, 2, 1.f, out),
                  "num_heads (3)");
    ExpectInvalid(ops::PagedAttention(b.q, b.k_cache, b.v_cache, b.md, 8, 2, 1.f, out),
                  "q must be float32 [*, 64], got float32 [3, 32]");
    Tensor lens64 = Tensor::Zeros(DType::kInt64, {2});
    b.md.seq_lens = lens64;
    ExpectInvalid(RunAttention(b, 1.f, out), "md.seq_lens must be int32");
  }
}

}  // namespace
}  // namespace tessera
