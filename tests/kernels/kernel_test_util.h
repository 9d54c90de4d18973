// Helpers shared by the kernel tests: seeded random tensors and comparisons
// of float32 kernel outputs against float64 references computed in the test.
// Not thread-safe (tests are single-threaded callers).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/tensor.h"

namespace tessera::testing {

// The seed of a test's generator: TESSERA_TEST_SEED when set (to explore
// other inputs), else `fallback` (CI runs are reproducible). Tests print it
// with SCOPED_TRACE so a failure says how to reproduce it.
inline uint32_t TestSeed(uint32_t fallback) {
  const char* env = std::getenv("TESSERA_TEST_SEED");
  if (env != nullptr && *env != '\0')
    return static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) ^ fallback;
  return fallback;
}

inline std::string SeedTrace(uint32_t seed) {
  const char* env = std::getenv("TESSERA_TEST_SEED");
  return absl::StrCat("random inputs from std::mt19937 seed ", seed,
                      " (TESSERA_TEST_SEED=", env != nullptr ? env : "unset", ")");
}

inline std::string ShapeTrace(int64_t rows, int64_t cols) {
  return absl::StrCat("shape [", rows, ", ", cols, "]");
}

// Uniform float32 values in [lo, hi).
inline Tensor RandomFloats(std::mt19937& rng, std::vector<int64_t> shape, float lo = -1.f,
                           float hi = 1.f) {
  Tensor t = Tensor::Empty(DType::kFloat32, std::move(shape));
  std::uniform_real_distribution<float> dist(lo, hi);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

inline std::vector<double> ToDoubles(const Tensor& t) {
  const float* p = t.data_as<const float>();
  return std::vector<double>(p, p + t.numel());
}

inline Tensor Clone(const Tensor& t) {
  Tensor c = Tensor::Empty(t.dtype(), t.shape());
  if (t.nbytes() > 0)
    std::copy_n(static_cast<const char*>(t.data()), t.nbytes(), static_cast<char*>(c.data()));
  return c;
}

// Every element within atol + rtol * |ref|. Reports the worst element.
inline ::testing::AssertionResult ElementwiseNear(const Tensor& got, const std::vector<double>& ref,
                                                  double rtol, double atol) {
  if (got.numel() != static_cast<int64_t>(ref.size())) {
    return ::testing::AssertionFailure()
           << "size " << got.numel() << " vs reference " << ref.size();
  }
  const float* g = got.data_as<const float>();
  double worst = 0;  // error / allowed
  int64_t worst_i = -1;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::abs(static_cast<double>(g[i]) - ref[i]);
    const double allowed = atol + rtol * std::abs(ref[i]);
    const double ratio = std::isnan(err) ? INFINITY : err / allowed;
    if (ratio > worst) {
      worst = ratio;
      worst_i = static_cast<int64_t>(i);
    }
  }
  if (worst <= 1.0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << worst_i << ": got " << g[worst_i] << ", reference " << ref[worst_i]
         << " (|err| " << std::abs(g[worst_i] - ref[worst_i]) << " > " << atol << " + " << rtol
         << " * |ref|)";
}

// max_i |got_i - ref_i| <= tol * max_i |ref_i| (error relative to the
// output's infinity norm). Reports the worst element.
inline ::testing::AssertionResult NormwiseNear(const Tensor& got, const std::vector<double>& ref,
                                               double tol) {
  if (got.numel() != static_cast<int64_t>(ref.size())) {
    return ::testing::AssertionFailure()
           << "size " << got.numel() << " vs reference " << ref.size();
  }
  const float* g = got.data_as<const float>();
  double ref_max = 0, err_max = 0;
  int64_t worst_i = -1;
  for (size_t i = 0; i < ref.size(); ++i) {
    ref_max = std::max(ref_max, std::abs(ref[i]));
    const double err = std::abs(static_cast<double>(g[i]) - ref[i]);
    if (std::isnan(err) || err > err_max) {
      err_max = std::isnan(err) ? INFINITY : err;
      worst_i = static_cast<int64_t>(i);
    }
  }
  if (err_max <= tol * ref_max) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << worst_i << ": got " << g[worst_i] << ", reference " << ref[worst_i]
         << "; max |err| " << err_max << " > " << tol << " * max |ref| " << ref_max;
}

// Bitwise equality (copies: embedding, gather, kv store).
inline ::testing::AssertionResult ExactlyEqual(const float* got, const float* want, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << got[i] << ", want " << want[i];
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace tessera::testing
