// Helpers shared by the CUDA kernel tests (tests/kernels/cuda_*_test.cc):
// skipping without a device, moving float32 reference data to and from the
// device in float32 / float16 / bfloat16, and the per-dtype error bounds.
// Only the public Tensor/ops API is used, so the tests also compile (and skip)
// in builds without the CUDA path. Not thread-safe (single-threaded tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/tensor.h"
#include "tests/testing/gpu_required.h"

#if TESSERA_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace tessera::testing {

#if TESSERA_HAVE_CUDA
// A non-blocking CUDA stream for one test (destroyed with it).
class TestStream {
 public:
  TestStream() { EXPECT_EQ(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), cudaSuccess); }
  ~TestStream() { cudaStreamDestroy(s_); }
  TestStream(const TestStream&) = delete;
  TestStream& operator=(const TestStream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};
#endif

// Why CUDA tests cannot run here, or "" when a device is present.
inline std::string NoCudaReason() {
  absl::StatusOr<int> n = CudaDeviceCount();
  if (!n.ok()) return absl::StrCat("no CUDA device: ", n.status().ToString());
  if (*n == 0) return "no CUDA device: cudaGetDeviceCount returned 0";
  return "";
}

// Fixture base: skips every test without a device (fails under
// TESSERA_REQUIRE_GPU=1, tests/testing/gpu_required.h).
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = NoCudaReason();
    if (!why.empty()) TESSERA_GPU_TEST_CANNOT_RUN(why);
  }
};

inline const std::vector<DType>& FloatDTypes() {
  static const std::vector<DType> kTypes = {DType::kFloat32, DType::kBFloat16, DType::kFloat16};
  return kTypes;
}

// float32 CPU values rounded to `dtype` and back (what the device will see).
inline Tensor RoundTo(const Tensor& f32, DType dtype) {
  Tensor out = Tensor::Empty(DType::kFloat32, f32.shape());
  const float* s = f32.data_as<const float>();
  float* d = out.data_as<float>();
  for (int64_t i = 0; i < f32.numel(); ++i) {
    switch (dtype) {
      case DType::kBFloat16:
        d[i] = BFloat16ToFloat(FloatToBFloat16(s[i]));
        break;
      case DType::kFloat16:
        d[i] = HalfToFloat(FloatToHalf(s[i]));
        break;
      default:
        d[i] = s[i];
    }
  }
  return out;
}

// A CUDA tensor of `dtype` holding the float32 CPU values (rounded to nearest).
inline Tensor ToDevice(const Tensor& f32, DType dtype) {
  Tensor host = Tensor::Empty(dtype, f32.shape());
  const float* s = f32.data_as<const float>();
  for (int64_t i = 0; i < f32.numel(); ++i) {
    switch (dtype) {
      case DType::kFloat32:
        host.data_as<float>()[i] = s[i];
        break;
      case DType::kBFloat16:
        host.data_as<uint16_t>()[i] = FloatToBFloat16(s[i]);
        break;
      case DType::kFloat16:
        host.data_as<uint16_t>()[i] = FloatToHalf(s[i]);
        break;
      default:
        ADD_FAILURE() << "ToDevice: not a floating dtype";
    }
  }
  absl::StatusOr<Tensor> dev = host.To(Device::kCuda);
  EXPECT_TRUE(dev.ok()) << dev.status();
  return dev.ok() ? *dev : Tensor();
}

// Any CPU tensor (ids, slots, metadata) copied to the device as is.
inline Tensor Upload(const Tensor& cpu) {
  absl::StatusOr<Tensor> dev = cpu.To(Device::kCuda);
  EXPECT_TRUE(dev.ok()) << dev.status();
  return dev.ok() ? *dev : Tensor();
}

// A device tensor of a floating dtype as float32 on the CPU (waits for the
// current stream, so a kernel fault shows up here).
inline Tensor ToHostFloat(const Tensor& dev) {
  absl::StatusOr<Tensor> host = dev.To(Device::kCpu);
  EXPECT_TRUE(host.ok()) << host.status();
  if (!host.ok()) return Tensor::Zeros(DType::kFloat32, dev.shape());
  Tensor out = Tensor::Empty(DType::kFloat32, dev.shape());
  ConvertToFloat32(host->data(), host->dtype(), static_cast<size_t>(host->numel()),
                   out.data_as<float>());
  return out;
}

// A device tensor (any dtype) copied to the CPU as is.
inline Tensor Download(const Tensor& dev) {
  absl::StatusOr<Tensor> host = dev.To(Device::kCpu);
  EXPECT_TRUE(host.ok()) << host.status();
  return host.ok() ? *host : Tensor::Zeros(dev.dtype(), dev.shape());
}

// Relative bounds of a CUDA result against the CPU op run on the same
// (rounded) inputs. float32: 1e-5 (different summation order only).
// bfloat16 / float16: the result is rounded once to 8 / 11 significant bits
// (relative 2^-9 / 2^-12) plus, in fused ops, one rounded intermediate, so
// 1e-2 / 5e-3 leave a 2-5x margin.
inline double RelTol(DType dtype) {
  switch (dtype) {
    case DType::kBFloat16:
      return 1e-2;
    case DType::kFloat16:
      return 5e-3;
    default:
      return 1e-5;
  }
}

inline std::string DTypeTrace(DType dtype) { return absl::StrCat("dtype ", DTypeName(dtype)); }

}  // namespace tessera::testing
