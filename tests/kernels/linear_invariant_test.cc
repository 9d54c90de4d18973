// The batch-invariant CPU Linear (kernels/cpu/linear_invariant.h): each output
// row is bit for bit the same whether its input row is computed alone, with
// others, at any offset in the batch or with any thread count; and the result
// is the product (against a float64 reference).
#include "kernels/cpu/linear_invariant.h"

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>

#include "gtest/gtest.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera {
namespace {

using testing::RandomFloats;

Tensor Rows(const Tensor& x, int64_t begin, int64_t count) {
  Tensor r = Tensor::Empty(DType::kFloat32, {count, x.dim(1)});
  std::memcpy(r.data(), x.data_as<const float>() + begin * x.dim(1),
              count * x.dim(1) * sizeof(float));
  return r;
}

Tensor Product(const Tensor& x, const Tensor& w, const Tensor* bias) {
  Tensor out = Tensor::Empty(DType::kFloat32, {x.dim(0), w.dim(0)});
  ops::cpu::LinearBatchInvariant(x, w, bias, out);
  return out;
}

bool SameRow(const Tensor& a, int64_t ra, const Tensor& b, int64_t rb) {
  const int64_t m = a.dim(1);
  return std::memcmp(a.data_as<const float>() + ra * m, b.data_as<const float>() + rb * m,
                     m * sizeof(float)) == 0;
}

TEST(LinearBatchInvariantTest, EveryRowIsTheSameAloneOrBatched) {
  const uint32_t seed = testing::TestSeed(71);
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937 rng(seed);
  // k not a multiple of 8 (a tail), m not a multiple of 4 (a short block).
  for (auto [n, k, m] :
       {std::tuple<int64_t, int64_t, int64_t>{37, 203, 67}, {9, 64, 5}, {5, 7, 3}, {64, 288, 32}}) {
    SCOPED_TRACE(absl::StrCat("n ", n, " k ", k, " m ", m));
    const Tensor x = RandomFloats(rng, {n, k});
    const Tensor w = RandomFloats(rng, {m, k});
    const Tensor bias = RandomFloats(rng, {m});
    ops::cpu::SetThreads(2);
    const Tensor all = Product(x, w, &bias);
    // Alone, one row at a time.
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_TRUE(SameRow(Product(Rows(x, i, 1), w, &bias), 0, all, i)) << "row " << i << " alone";
    }
    // In sub-batches of every size at odd offsets, on one thread.
    ops::cpu::SetThreads(1);
    for (int64_t count = 2; count <= n; count += 3) {
      for (int64_t begin = 1; begin + count <= n; begin += count + 1) {
        const Tensor part = Product(Rows(x, begin, count), w, &bias);
        for (int64_t i = 0; i < count; ++i) {
          EXPECT_TRUE(SameRow(part, i, all, begin + i))
              << "row " << begin + i << " in a batch of " << count << " at " << begin;
        }
      }
    }
    // The product itself.
    const float* o = all.data_as<const float>();
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < m; ++j) {
        double want = bias.data_as<const float>()[j];
        for (int64_t t = 0; t < k; ++t) {
          want += static_cast<double>(x.data_as<const float>()[i * k + t]) *
                  w.data_as<const float>()[j * k + t];
        }
        ASSERT_NEAR(o[i * m + j], want, 1e-4 * (1 + std::sqrt(static_cast<double>(k))))
            << "[" << i << ", " << j << "]";
      }
    }
  }
}

TEST(LinearBatchInvariantTest, OpsLinearUsesItWhenAsked) {
  std::mt19937 rng(testing::TestSeed(72));
  const Tensor x = RandomFloats(rng, {6, 40});
  const Tensor w = RandomFloats(rng, {10, 40});
  const Tensor want = Product(x, w, nullptr);
  Tensor out = Tensor::Empty(DType::kFloat32, {6, 10});
  ops::SetCpuBatchInvariant(true);
  ASSERT_TRUE(ops::Linear(x, w, nullptr, out).ok());
  ops::SetCpuBatchInvariant(false);
  EXPECT_EQ(std::memcmp(out.data(), want.data(), want.nbytes()), 0);
  // A single row through ops::Linear equals its row of the batch too.
  Tensor one = Tensor::Empty(DType::kFloat32, {1, 10});
  ops::SetCpuBatchInvariant(true);
  ASSERT_TRUE(ops::Linear(Rows(x, 3, 1), w, nullptr, one).ok());
  ops::SetCpuBatchInvariant(false);
  EXPECT_TRUE(SameRow(one, 0, want, 3));
}

}  // namespace
}  // namespace tessera
