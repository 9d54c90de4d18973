// ops::Sample on the CPU (the reference the CUDA kernel is compared with):
// greedy picks the first maximum, NaN/inf handling, seeded draws that do not
// depend on the batch, top-k / top-p / min-p never leaving the set the
// definitions allow (checked in float64), temperature sampling following the
// softmax (chi-square at the 0.1% level, fixed seeds), logprobs, validation.
// Also RopeAndKvStore on the CPU equals ApplyRope followed by KvStore.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/sampling_test_util.h"

namespace tessera {
namespace {

using testing::AllowedTokens;
using testing::ChiSquare;
using testing::ChiSquareCritical001;
using ::testing::HasSubstr;
using testing::MakeSamplingTensors;
using testing::RandomFloats;
using testing::RowSampling;
using testing::Softmax;

struct Result {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
};

Result RunSample(const Tensor& logits, const std::vector<RowSampling>& rows) {
  const int64_t n = logits.dim(0);
  Tensor tokens = Tensor::Empty(DType::kInt32, {n});
  Tensor logprobs = Tensor::Empty(DType::kFloat32, {n});
  const absl::Status s = ops::Sample(logits, MakeSamplingTensors(rows), tokens, logprobs);
  EXPECT_TRUE(s.ok()) << s;
  Result r;
  r.tokens.assign(tokens.data_as<int32_t>(), tokens.data_as<int32_t>() + n);
  r.logprobs.assign(logprobs.data_as<float>(), logprobs.data_as<float>() + n);
  return r;
}

// n copies of one row of logits.
Tensor Repeat(const std::vector<float>& row, int64_t n) {
  std::vector<float> all;
  for (int64_t i = 0; i < n; ++i) all.insert(all.end(), row.begin(), row.end());
  return Tensor::FromFloats(all, {n, static_cast<int64_t>(row.size())});
}

TEST(SampleTest, GreedyTakesTheFirstMaximumAndItsLogprob) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor logits = Tensor::FromFloats({1, 3, 2, 3,              // tie: lowest id
                                      nan, -1, -inf, -2,       // NaN is never the max
                                      -inf, -inf, -inf, -inf,  // nothing finite: token 0
                                      0, inf, 5, inf},         // +inf: largest finite, first wins
                                     {4, 4});
  const Result r = RunSample(logits, std::vector<RowSampling>(4, RowSampling{0.f}));
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{1, 1, 0, 1}));
  const double lse0 = std::log(std::exp(-2.0) + 2 + std::exp(-1.0));
  EXPECT_NEAR(r.logprobs[0], -lse0, 1e-6);
  EXPECT_NEAR(r.logprobs[1], -std::log(1 + std::exp(-1.0)), 1e-6);
  EXPECT_EQ(r.logprobs[2], -inf);
}

TEST(SampleTest, SeededDrawsAreDeterministicAndBatchInvariant) {
  std::mt19937 rng(301);
  const int64_t vocab = 1000, n = 16;
  Tensor logits = RandomFloats(rng, {n, vocab}, -4.f, 4.f);
  std::vector<RowSampling> rows(n);
  for (int64_t i = 0; i < n; ++i) {
    rows[i] = RowSampling{0.5f + 0.1f * i,
                          i % 3 == 0 ? 50 : -1,
                          i % 2 == 0 ? 0.9f : 1.f,
                          i % 5 == 0 ? 0.05f : 0.f,
                          1000u + static_cast<uint64_t>(i),
                          i * 7};
  }
  const Result a = RunSample(logits, rows);
  const Result b = RunSample(logits, rows);
  EXPECT_EQ(a.tokens, b.tokens);
  // Each row alone, and the rows in reverse order, give the same tokens.
  for (int64_t i = 0; i < n; ++i) {
    const Result one = RunSample(logits.Slice(i, i + 1), {rows[i]});
    EXPECT_EQ(one.tokens[0], a.tokens[i]) << "row " << i;
    EXPECT_EQ(one.logprobs[0], a.logprobs[i]) << "row " << i;
  }
  Tensor reversed = Tensor::Empty(DType::kFloat32, {n, vocab});
  std::vector<RowSampling> rev_rows(rows.rbegin(), rows.rend());
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(logits.data_as<float>() + (n - 1 - i) * vocab, vocab,
                reversed.data_as<float>() + i * vocab);
  }
  const Result c = RunSample(reversed, rev_rows);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(c.tokens[n - 1 - i], a.tokens[i]) << "row " << i;
  // Another step of the same seed is another draw.
  std::set<int32_t> seen;
  for (int64_t step = 0; step < 50; ++step) {
    RowSampling r{1.f, -1, 1.f, 0.f, 42, step};
    seen.insert(RunSample(logits.Slice(0, 1), {r}).tokens[0]);
  }
  EXPECT_GT(seen.size(), 5u);
}

TEST(SampleTest, TruncationNeverLeavesTheAllowedSet) {
  std::mt19937 rng(302);
  const int64_t vocab = 300;
  const std::vector<RowSampling> configs =
      {
          {1.f, 5, 1.f, 0.f},   {0.7f, -1, 0.5f, 0.f},   {1.3f, 40, 0.8f, 0.f},
          {1.f, -1, 1.f, 0.2f}, {2.f, 100, 0.95f, 0.1f}, {1.f, 1, 1.f, 0.f},
          {1.f, -1, 0.f, 0.f},  // top_p 0: the best token only
      };
  for (const RowSampling& cfg : configs) {
    SCOPED_TRACE(absl::StrCat("T ", cfg.temperature, " top_k ", cfg.top_k, " top_p ", cfg.top_p,
                              " min_p ", cfg.min_p));
    Tensor one = RandomFloats(rng, {1, vocab}, -3.f, 3.f);
    const std::vector<float> row(one.data_as<float>(), one.data_as<float>() + vocab);
    const int64_t n = 400;
    std::vector<RowSampling> rows(n, cfg);
    for (int64_t i = 0; i < n; ++i) rows[i].seed = 7 + static_cast<uint64_t>(i);
    const Result r = RunSample(Repeat(row, n), rows);
    const std::set<int32_t> allowed = AllowedTokens(row.data(), vocab, cfg);
    std::set<int32_t> picked(r.tokens.begin(), r.tokens.end());
    for (int32_t t : picked) EXPECT_TRUE(allowed.count(t)) << "token " << t << " not allowed";
    if (allowed.size() >= 3) {
      EXPECT_GE(picked.size(), 2u) << "the draws never varied";
    }
  }
}

TEST(SampleTest, TemperatureSamplingFollowsTheSoftmax) {
  const std::vector<float> row = {1.0f, 0.5f, -0.3f, 2.0f, 0.0f, 1.5f, -1.0f, 0.7f};
  for (float temperature : {0.7f, 1.0f, 1.8f}) {
    SCOPED_TRACE(absl::StrCat("temperature ", temperature));
    const int64_t n = 20000;
    std::vector<RowSampling> rows(n, RowSampling{temperature});
    for (int64_t i = 0; i < n; ++i) {
      rows[i].seed = 12345;
      rows[i].step = i;  // one sequence's successive draws
    }
    const Result r = RunSample(Repeat(row, n), rows);
    std::vector<int64_t> counts(row.size(), 0);
    for (int32_t t : r.tokens) ++counts[t];
    int df = 0;
    const double chi = ChiSquare(counts, Softmax(row.data(), 8, temperature), &df);
    EXPECT_LT(chi, ChiSquareCritical001(df)) << "df " << df;
  }
}

TEST(SampleTest, TopKAndTopPRenormaliseOverTheKeptSet) {
  // Weights e^x of the top 6: 20.1 13.5 12.2 7.4 2.7 1.6 (sum 57.5); the
  // running share reaches 0.92 >= 0.9 at the 4th token.
  const std::vector<float> row = {3.0f, 2.6f, 2.5f, 2.0f, 1.0f, 0.5f, 0.2f, -1.f, -2.f, -3.f};
  RowSampling cfg{1.f, 6, 0.9f, 0.f};
  ASSERT_EQ(AllowedTokens(row.data(), 10, cfg), (std::set<int32_t>{0, 1, 2, 3}));
  const std::vector<double> full = Softmax(row.data(), 10, 1.0);
  std::vector<double> p(full.begin(), full.begin() + 4);
  double kept = 0;
  for (double v : p) kept += v;
  for (double& v : p) v /= kept;
  const int64_t n = 20000;
  std::vector<RowSampling> rows(n, cfg);
  for (int64_t i = 0; i < n; ++i) rows[i].seed = 99 + static_cast<uint64_t>(i);
  const Result r = RunSample(Repeat(row, n), rows);
  std::vector<int64_t> counts(4, 0);
  for (int32_t t : r.tokens) {
    ASSERT_LT(t, 4) << "token outside top-k/top-p";
    ++counts[t];
  }
  int df = 0;
  const double chi = ChiSquare(counts, p, &df);
  EXPECT_LT(chi, ChiSquareCritical001(df)) << "df " << df;
}

TEST(SampleTest, LogprobIsTheLogSoftmaxBeforeTemperature) {
  std::mt19937 rng(303);
  Tensor logits = RandomFloats(rng, {4, 50}, -2.f, 2.f);
  std::vector<RowSampling> rows(4, RowSampling{0.5f, 10, 0.9f, 0.f, 5, 0});
  const Result r = RunSample(logits, rows);
  for (int64_t i = 0; i < 4; ++i) {
    const float* x = logits.data_as<float>() + i * 50;
    const std::vector<double> p = Softmax(x, 50, 1.0);
    EXPECT_NEAR(r.logprobs[i], std::log(p[r.tokens[i]]), 1e-5) << "row " << i;
  }
}

TEST(SampleTest, UniformIsAFunctionOfSeedAndStep) {
  EXPECT_EQ(ops::SampleUniform(1, 2), ops::SampleUniform(1, 2));
  EXPECT_NE(ops::SampleUniform(1, 2), ops::SampleUniform(1, 3));
  EXPECT_NE(ops::SampleUniform(1, 2), ops::SampleUniform(2, 2));
  double sum = 0;
  for (int64_t s = 0; s < 10000; ++s) {
    const double u = ops::SampleUniform(77, s);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

TEST(SampleTest, ValidatesShapesAndDTypes) {
  Tensor logits = Tensor::Zeros(DType::kFloat32, {3, 10});
  ops::SamplingTensors p = MakeSamplingTensors(std::vector<RowSampling>(3));
  Tensor tokens = Tensor::Empty(DType::kInt32, {3});
  Tensor logprobs = Tensor::Empty(DType::kFloat32, {3});
  EXPECT_TRUE(ops::Sample(logits, p, tokens, logprobs).ok());
  Tensor bad_tokens = Tensor::Empty(DType::kInt64, {3});
  absl::Status s = ops::Sample(logits, p, bad_tokens, logprobs);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("Sample: tokens must be int32 [3]"));
  ops::SamplingTensors short_p = MakeSamplingTensors(std::vector<RowSampling>(2));
  s = ops::Sample(logits, short_p, tokens, logprobs);
  EXPECT_THAT(std::string(s.message()), HasSubstr("params.temperature must be float32 [3]"));
  Tensor empty_vocab = Tensor::Zeros(DType::kFloat32, {3, 0});
  EXPECT_EQ(ops::Sample(empty_vocab, p, tokens, logprobs).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RopeAndKvStoreTest, EqualsApplyRopeThenKvStoreOnTheCpu) {
  std::mt19937 rng(304);
  const int64_t n = 9, nh = 4, nkv = 2, hd = 16, blocks = 4, bs = 4;
  Tensor cos_sin = ops::BuildRopeCache(hd, 64, 10000.0, {});
  Tensor positions = Tensor::FromInts({0, 5, 63, 7, 1, 2, 3, 30, 31}, {n});
  Tensor slots = Tensor::Empty(DType::kInt64, {n});
  const int64_t slot_values[] = {3, -1, 15, 0, 9, 8, -1, 1, 14};
  std::copy(std::begin(slot_values), std::end(slot_values), slots.data_as<int64_t>());
  Tensor q = RandomFloats(rng, {n, nh * hd}), k = RandomFloats(rng, {n, nkv * hd});
  Tensor v = RandomFloats(rng, {n, nkv * hd});
  Tensor kc = RandomFloats(rng, {blocks, bs, nkv, hd}),
         vc = RandomFloats(rng, {blocks, bs, nkv, hd});
  Tensor q2 = testing::Clone(q), k2 = testing::Clone(k);
  Tensor kc2 = testing::Clone(kc), vc2 = testing::Clone(vc);
  ASSERT_TRUE(ops::RopeAndKvStore(positions, q, k, v, hd, cos_sin, slots, kc, vc).ok());
  ASSERT_TRUE(ops::ApplyRope(positions, q2, k2, hd, cos_sin).ok());
  ASSERT_TRUE(ops::KvStore(k2, v, slots, kc2, vc2).ok());
  EXPECT_TRUE(testing::ExactlyEqual(q.data_as<float>(), q2.data_as<float>(), q.numel()));
  EXPECT_TRUE(testing::ExactlyEqual(k.data_as<float>(), k2.data_as<float>(), k.numel()));
  EXPECT_TRUE(testing::ExactlyEqual(kc.data_as<float>(), kc2.data_as<float>(), kc.numel()));
  EXPECT_TRUE(testing::ExactlyEqual(vc.data_as<float>(), vc2.data_as<float>(), vc.numel()));
  // Validation names the fused op; a head_dim that is not the cache's fails.
  absl::Status s = ops::RopeAndKvStore(positions, q, k, v, 8, ops::BuildRopeCache(8, 64, 1e4, {}),
                                       slots, kc, vc);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("RopeAndKvStore: "));
  Tensor bad_slots = Tensor::Zeros(DType::kInt64, {n});
  bad_slots.data_as<int64_t>()[2] = blocks * bs;
  s = ops::RopeAndKvStore(positions, q, k, v, hd, cos_sin, bad_slots, kc, vc);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera
