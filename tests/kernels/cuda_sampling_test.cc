// ops::Sample on CUDA: greedy equals the CPU argmax (first maximum) in every
// dtype; seeded sampling is deterministic and does not depend on the batch
// (each row alone, rows reversed); the kernel implements the CPU's rule (the
// same tokens for the same seeds, exactly);
// top-k / top-p / min-p never leave the set the definitions allow (float64
// reference, vocabularies up to 128K, bfloat16 logits full of ties); and
// temperature sampling follows the softmax (chi-square at the 0.1% level,
// fixed seeds).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "tests/kernels/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/sampling_test_util.h"

namespace tessera {
namespace {

using testing::AllowedTokens;
using testing::ChiSquare;
using testing::ChiSquareCritical001;
using testing::CudaTest;
using testing::Download;
using testing::DTypeTrace;
using testing::FloatDTypes;
using testing::MakeSamplingTensors;
using testing::RandomFloats;
using testing::RoundTo;
using testing::RowSampling;
using testing::Softmax;
using testing::ToDevice;
using testing::Upload;

struct Result {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
};

// Runs ops::Sample on `device` (logits given as float32 CPU values, already
// rounded to `dtype`).
Result RunSample(const Tensor& logits, DType dtype, const std::vector<RowSampling>& rows,
                 Device device) {
  const int64_t n = logits.dim(0);
  ops::SamplingTensors params = MakeSamplingTensors(rows);
  Tensor tokens = Tensor::Empty(DType::kInt32, {n}, device);
  Tensor logprobs = Tensor::Empty(DType::kFloat32, {n}, device);
  absl::Status s;
  if (device == Device::kCpu) {
    s = ops::Sample(logits, params, tokens, logprobs);
  } else {
    ops::SamplingTensors dp{Upload(params.temperature), Upload(params.top_k), Upload(params.top_p),
                            Upload(params.min_p),       Upload(params.seed),  Upload(params.step)};
    s = ops::Sample(ToDevice(logits, dtype), dp, tokens, logprobs);
  }
  EXPECT_TRUE(s.ok()) << s;
  Tensor t = device == Device::kCpu ? tokens : Download(tokens);
  Tensor l = device == Device::kCpu ? logprobs : Download(logprobs);
  Result r;
  r.tokens.assign(t.data_as<int32_t>(), t.data_as<int32_t>() + n);
  r.logprobs.assign(l.data_as<float>(), l.data_as<float>() + n);
  return r;
}

Result Gpu(const Tensor& logits, DType dtype, const std::vector<RowSampling>& rows) {
  return RunSample(logits, dtype, rows, Device::kCuda);
}
Result Cpu(const Tensor& logits, const std::vector<RowSampling>& rows) {
  return RunSample(logits, DType::kFloat32, rows, Device::kCpu);
}

Tensor Repeat(const std::vector<float>& row, int64_t n) {
  std::vector<float> all;
  for (int64_t i = 0; i < n; ++i) all.insert(all.end(), row.begin(), row.end());
  return Tensor::FromFloats(all, {n, static_cast<int64_t>(row.size())});
}

class CudaSamplingTest : public CudaTest {};

TEST_F(CudaSamplingTest, GreedyEqualsTheCpuArgmax) {
  std::mt19937 rng(401);
  const float inf = std::numeric_limits<float>::infinity();
  for (DType dtype : FloatDTypes()) {
    for (int64_t vocab : {7, 1000, 32000, 128256}) {
      SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " vocab ", vocab));
      const int64_t n = 24;
      Tensor logits = RoundTo(RandomFloats(rng, {n, vocab}, -10.f, 10.f), dtype);
      float* x = logits.data_as<float>();
      x[1 * vocab + vocab - 1] = 30.f;                     // max at the last id
      x[2 * vocab + 3] = x[2 * vocab + vocab / 2] = 31.f;  // tie: the lower id wins
      x[3 * vocab + 0] = std::numeric_limits<float>::quiet_NaN();
      for (int64_t j = 0; j < vocab; ++j) x[4 * vocab + j] = -inf;  // nothing finite
      x[5 * vocab + vocab / 3] = inf;
      const Result cpu = Cpu(logits, std::vector<RowSampling>(n, RowSampling{0.f}));
      const Result gpu = Gpu(logits, dtype, std::vector<RowSampling>(n, RowSampling{0.f}));
      for (int64_t i = 0; i < n; ++i) {
        const float* row = x + i * vocab;
        int32_t best = 0;
        for (int64_t j = 1; j < vocab; ++j) {
          if (row[j] > row[best] || (std::isnan(row[best]) && !std::isnan(row[j]))) best = j;
        }
        EXPECT_EQ(gpu.tokens[i], cpu.tokens[i]) << "row " << i;
        if (i != 4) {
          EXPECT_EQ(gpu.tokens[i], best) << "row " << i;
        }
        if (std::isinf(cpu.logprobs[i])) {
          EXPECT_EQ(gpu.logprobs[i], cpu.logprobs[i]) << "row " << i;
        } else {
          EXPECT_NEAR(gpu.logprobs[i], cpu.logprobs[i], 2e-5 + 2e-6 * std::abs(cpu.logprobs[i]))
              << "row " << i;
        }
      }
      EXPECT_EQ(gpu.tokens[4], 0);
      EXPECT_EQ(gpu.logprobs[4], -inf);
    }
  }
}

std::vector<RowSampling> MixedRows(int64_t n) {
  std::vector<RowSampling> rows(n);
  for (int64_t i = 0; i < n; ++i) {
    rows[i].temperature = i % 7 == 0 ? 0.f : 0.4f + 0.15f * static_cast<float>(i % 9);
    rows[i].top_k = i % 3 == 0 ? 40 : (i % 3 == 1 ? -1 : 1000);
    rows[i].top_p = i % 4 == 0 ? 1.f : 0.6f + 0.1f * static_cast<float>(i % 4);
    rows[i].min_p = i % 5 == 0 ? 0.05f : 0.f;
    rows[i].seed = 0x1234567890ull * static_cast<uint64_t>(i + 1);
    rows[i].step = 3 * i;
  }
  return rows;
}

TEST_F(CudaSamplingTest, SeededSamplingIsDeterministicBatchInvariantAndMatchesTheCpu) {
  std::mt19937 rng(402);
  for (DType dtype : FloatDTypes()) {
    for (int64_t vocab : {50, 32000}) {
      SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " vocab ", vocab));
      const int64_t n = 40;
      Tensor logits = RoundTo(RandomFloats(rng, {n, vocab}, -5.f, 5.f), dtype);
      const std::vector<RowSampling> rows = MixedRows(n);
      const Result a = Gpu(logits, dtype, rows);
      const Result b = Gpu(logits, dtype, rows);
      EXPECT_EQ(a.tokens, b.tokens) << "two runs differ";
      EXPECT_EQ(a.logprobs, b.logprobs) << "two runs differ";
      // Rows alone and in reverse order.
      std::vector<RowSampling> rev(rows.rbegin(), rows.rend());
      Tensor reversed = Tensor::Empty(DType::kFloat32, {n, vocab});
      for (int64_t i = 0; i < n; ++i) {
        std::copy_n(logits.data_as<float>() + (n - 1 - i) * vocab, vocab,
                    reversed.data_as<float>() + i * vocab);
      }
      const Result c = Gpu(reversed, dtype, rev);
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(c.tokens[n - 1 - i], a.tokens[i]) << "row " << i << " reversed";
        if (i % 8 == 0) {
          const Result one = Gpu(logits.Slice(i, i + 1), dtype, {rows[i]});
          EXPECT_EQ(one.tokens[0], a.tokens[i]) << "row " << i << " alone";
        }
      }
      // The CPU implements the same rule with the same (bit-exact) arithmetic:
      // every token agrees.
      const Result cpu = Cpu(logits, rows);
      EXPECT_EQ(cpu.tokens, a.tokens) << "GPU and CPU samplers disagree";
    }
  }
}

TEST_F(CudaSamplingTest, TruncationNeverLeavesTheAllowedSet) {
  std::mt19937 rng(403);
  const std::vector<RowSampling> configs = {
      {1.f, 5, 1.f, 0.f},   {0.7f, -1, 0.5f, 0.f},   {1.3f, 40, 0.8f, 0.f},
      {1.f, -1, 1.f, 0.2f}, {2.f, 100, 0.95f, 0.1f}, {1.f, 1, 1.f, 0.f},
      {1.f, -1, 0.f, 0.f},  {0.9f, 300, 0.99f, 0.f},
  };
  for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
    for (int64_t vocab : {300, 32000, 128256}) {
      for (const RowSampling& cfg : configs) {
        SCOPED_TRACE(absl::StrCat(DTypeTrace(dtype), " vocab ", vocab, " T ", cfg.temperature,
                                  " top_k ", cfg.top_k, " top_p ", cfg.top_p, " min_p ",
                                  cfg.min_p));
        // Peaked logits, so the kept sets are small and the draws varied.
        Tensor one = RoundTo(RandomFloats(rng, {1, vocab}, -8.f, 4.f), dtype);
        const std::vector<float> row(one.data_as<float>(), one.data_as<float>() + vocab);
        const int64_t n = 256;
        std::vector<RowSampling> rows(n, cfg);
        for (int64_t i = 0; i < n; ++i) rows[i].seed = 17 + static_cast<uint64_t>(i);
        const Result r = Gpu(Repeat(row, n), dtype, rows);
        const std::set<int32_t> allowed = AllowedTokens(row.data(), vocab, cfg);
        const std::set<int32_t> picked(r.tokens.begin(), r.tokens.end());
        for (int32_t t : picked) EXPECT_TRUE(allowed.count(t)) << "token " << t << " not allowed";
        if (allowed.size() >= 3) {
          EXPECT_GE(picked.size(), 2u) << "the draws never varied";
        }
      }
    }
  }
}

TEST_F(CudaSamplingTest, TemperatureSamplingFollowsTheSoftmax) {
  const std::vector<float> row = {1.0f, 0.5f, -0.3f, 2.0f, 0.0f, 1.5f, -1.0f, 0.7f};
  for (float temperature : {0.7f, 1.0f, 1.8f}) {
    SCOPED_TRACE(absl::StrCat("temperature ", temperature));
    const int64_t n = 20000;
    std::vector<RowSampling> rows(n, RowSampling{temperature});
    for (int64_t i = 0; i < n; ++i) {
      rows[i].seed = 4242;
      rows[i].step = i;  // one sequence's successive draws
    }
    const Result r = Gpu(Repeat(row, n), DType::kFloat32, rows);
    std::vector<int64_t> counts(row.size(), 0);
    for (int32_t t : r.tokens) {
      ASSERT_GE(t, 0);
      ASSERT_LT(t, 8);
      ++counts[t];
    }
    int df = 0;
    const double chi = ChiSquare(counts, Softmax(row.data(), 8, temperature), &df);
    EXPECT_LT(chi, ChiSquareCritical001(df)) << "df " << df;
  }
}

TEST_F(CudaSamplingTest, TopKAndTopPRenormaliseOverTheKeptSet) {
  // As sample_test.cc: top-6 then top-p 0.9 keeps ids 0..3.
  const std::vector<float> row = {3.0f, 2.6f, 2.5f, 2.0f, 1.0f, 0.5f, 0.2f, -1.f, -2.f, -3.f};
  const RowSampling cfg{1.f, 6, 0.9f, 0.f};
  const std::vector<double> full = Softmax(row.data(), 10, 1.0);
  std::vector<double> p(full.begin(), full.begin() + 4);
  double kept = 0;
  for (double v : p) kept += v;
  for (double& v : p) v /= kept;
  const int64_t n = 20000;
  std::vector<RowSampling> rows(n, cfg);
  for (int64_t i = 0; i < n; ++i) rows[i].seed = 99 + static_cast<uint64_t>(i);
  const Result r = Gpu(Repeat(row, n), DType::kFloat32, rows);
  std::vector<int64_t> counts(4, 0);
  for (int32_t t : r.tokens) {
    ASSERT_GE(t, 0);
    ASSERT_LT(t, 4) << "token outside top-k/top-p";
    ++counts[t];
  }
  int df = 0;
  const double chi = ChiSquare(counts, p, &df);
  EXPECT_LT(chi, ChiSquareCritical001(df)) << "df " << df;
}

}  // namespace
}  // namespace tessera
