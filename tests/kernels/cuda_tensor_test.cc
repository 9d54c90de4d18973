// Tensor on CUDA: allocation, zeros, host <-> device <-> device copies (sync
// and async, pinned memory), the current-stream handle, and the format of the
// Status a CUDA error becomes. Tests that need a device skip without one
// ("no CUDA device: ..."); the stream-handle and error-format tests run
// anywhere the CUDA path is built.
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "tests/kernels/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"

#if TESSERA_HAVE_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"
#endif

namespace tessera {
namespace {

using testing::CudaTest;
using ::testing::HasSubstr;
using testing::RandomFloats;

TEST(CudaBuildTest, DeviceCountAgreesWithTheBuild) {
  absl::StatusOr<int> n = CudaDeviceCount();
  if (!CudaBuilt()) {
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(n.status().message()), HasSubstr("CUDA path is not built"));
  } else if (n.ok()) {
    EXPECT_GE(*n, 0);
  } else {
    // No driver / no device: the message names the call.
    EXPECT_THAT(std::string(n.status().message()), HasSubstr("cudaGetDeviceCount failed: "));
  }
}

TEST(CudaStreamTest, ScopedStreamSetsAndRestoresTheThreadsStream) {
  int a = 0, b = 0;  // stand-ins: the handle is never dereferenced here
  EXPECT_EQ(CurrentCudaStream(), nullptr);
  {
    ScopedCudaStream outer(&a);
    EXPECT_EQ(CurrentCudaStream(), &a);
    {
      ScopedCudaStream inner(&b);
      EXPECT_EQ(CurrentCudaStream(), &b);
    }
    EXPECT_EQ(CurrentCudaStream(), &a);
  }
  EXPECT_EQ(CurrentCudaStream(), nullptr);
}

TEST(CudaCopyTest, CopyFromChecksDTypeAndSize) {
  Tensor a = Tensor::Zeros(DType::kFloat32, {4});
  Tensor b = Tensor::Zeros(DType::kInt32, {4});
  Tensor c = Tensor::Zeros(DType::kFloat32, {5});
  EXPECT_EQ(a.CopyFrom(b).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.CopyFrom(c).code(), absl::StatusCode::kInvalidArgument);
  Tensor d = Tensor::FromFloats({1, 2, 3, 4}, {2, 2});
  ASSERT_TRUE(a.CopyFrom(d).ok());  // shapes may differ, sizes may not
  EXPECT_EQ(a.data_as<float>()[3], 4.f);
}

#if TESSERA_HAVE_CUDA
absl::Status FailingCopy() {
  CUDA_RETURN_IF_ERROR(cudaErrorInvalidValue);  // stands for a failed cudaMemcpyAsync(...)
  return absl::OkStatus();
}

TEST(CudaCheckTest, ErrorsNameTheCallAndTheCode) {
  const absl::Status s =
      cuda::CudaStatus(cudaErrorInvalidValue, "cudaMemcpyAsync(dst, src, n, kind, stream)");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "cudaMemcpyAsync failed: cudaErrorInvalidValue (1): invalid argument");
  EXPECT_EQ(cuda::CudaStatus(cudaErrorMemoryAllocation, "cudaMalloc(&p, n)").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(cuda::CudaStatus(cudaSuccess, "cudaFree(p)").ok());
  const absl::Status m = FailingCopy();
  EXPECT_THAT(std::string(m.message()), HasSubstr("cudaErrorInvalidValue failed: "));
  const absl::Status b = cuda::CublasStatus(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmul(h, ...)");
  EXPECT_EQ(b.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(b.message()),
              HasSubstr("cublasLtMatmul failed: CUBLAS_STATUS_NOT_SUPPORTED (15)"));
}
#endif

class CudaTensorTest : public CudaTest {};

TEST_F(CudaTensorTest, RoundTripsEveryDTypeThroughTheDevice) {
  std::mt19937 rng(11);
  for (DType dtype :
       {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kInt32, DType::kInt64}) {
    SCOPED_TRACE(DTypeName(dtype));
    Tensor host = Tensor::Empty(dtype, {37, 5});
    auto* bytes = static_cast<unsigned char*>(host.data());
    for (size_t i = 0; i < host.nbytes(); ++i) bytes[i] = static_cast<unsigned char>(rng());
    absl::StatusOr<Tensor> dev = host.To(Device::kCuda);
    ASSERT_TRUE(dev.ok()) << dev.status();
    EXPECT_EQ(dev->device(), Device::kCuda);
    EXPECT_EQ(dev->dtype(), dtype);
    EXPECT_EQ(dev->shape(), host.shape());
    // Device -> device, then back.
    Tensor dev2 = Tensor::Empty(dtype, {5, 37}, Device::kCuda);
    ASSERT_TRUE(dev2.CopyFrom(*dev).ok());
    absl::StatusOr<Tensor> back = dev2.To(Device::kCpu);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(std::memcmp(back->data(), host.data(), host.nbytes()), 0);
  }
}

TEST_F(CudaTensorTest, ZerosAndSlicesOnTheDevice) {
  Tensor z = Tensor::Zeros(DType::kBFloat16, {129, 3}, Device::kCuda);
  Tensor zh = testing::Download(z);
  for (int64_t i = 0; i < zh.numel(); ++i) ASSERT_EQ(zh.data_as<uint16_t>()[i], 0) << i;

  // Writing a slice of a device tensor touches only those rows.
  Tensor rows = Tensor::FromFloats({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor dev = Tensor::Zeros(DType::kFloat32, {4, 3}, Device::kCuda);
  Tensor middle = dev.Slice(1, 3);
  ASSERT_TRUE(middle.CopyFrom(rows).ok());
  Tensor got = testing::Download(dev);
  const std::vector<float> want = {0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0};
  EXPECT_TRUE(testing::ExactlyEqual(got.data_as<float>(), want.data(), 12));
}

TEST_F(CudaTensorTest, TryEmptyReportsOutOfMemory) {
  // 2^50 bytes: more than any GPU has.
  absl::StatusOr<Tensor> t = Tensor::TryEmpty(DType::kFloat32, {int64_t{1} << 48}, Device::kCuda);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kResourceExhausted) << t.status();
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("cudaMalloc failed: "));
  // The error is not sticky: the device still works.
  Tensor ok = Tensor::Zeros(DType::kFloat32, {8}, Device::kCuda);
  EXPECT_EQ(ok.device(), Device::kCuda);
  EXPECT_TRUE(SynchronizeCurrentStream().ok());
#if TESSERA_HAVE_CUDA
  // And the handled failure was consumed: the next launch's check (which
  // reads the thread's last error) does not report it as its own.
  ASSERT_FALSE(Tensor::TryEmpty(DType::kFloat32, {int64_t{1} << 48}, Device::kCuda).ok());
  EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess);
  Tensor x = Tensor::Zeros(DType::kFloat32, {2, 64}, Device::kCuda);
  Tensor w = Tensor::Zeros(DType::kFloat32, {64}, Device::kCuda);
  Tensor out = Tensor::Empty(DType::kFloat32, {2, 64}, Device::kCuda);
  const absl::Status launch = ops::RmsNorm(x, w, 1e-5f, out);
  EXPECT_TRUE(launch.ok()) << launch;
#endif
}

#if TESSERA_HAVE_CUDA
TEST_F(CudaTensorTest, AsyncCopiesThroughPinnedMemoryOnAStream) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  {
    ScopedCudaStream scoped(stream);
    std::mt19937 rng(5);
    Tensor src = RandomFloats(rng, {1000});
    Tensor pinned_in = Tensor::EmptyPinned(DType::kFloat32, {1000});
    Tensor pinned_out = Tensor::EmptyPinned(DType::kFloat32, {1000});
    std::memcpy(pinned_in.data(), src.data(), src.nbytes());
    Tensor dev = Tensor::Empty(DType::kFloat32, {1000}, Device::kCuda);
    ASSERT_TRUE(dev.CopyFromAsync(pinned_in).ok());
    ASSERT_TRUE(pinned_out.CopyFromAsync(dev).ok());
    ASSERT_TRUE(SynchronizeCurrentStream().ok());
    EXPECT_TRUE(testing::ExactlyEqual(pinned_out.data_as<float>(), src.data_as<float>(), 1000));
  }
  EXPECT_EQ(CurrentCudaStream(), nullptr);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST_F(CudaTensorTest, OpsRunOnTheCurrentStream) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  std::mt19937 rng(7);
  Tensor x = RandomFloats(rng, {16, 256});
  Tensor w = RandomFloats(rng, {256});
  Tensor ref = Tensor::Empty(DType::kFloat32, {16, 256});
  ASSERT_TRUE(ops::RmsNorm(x, w, 1e-5f, ref).ok());
  {
    ScopedCudaStream scoped(stream);
    Tensor dx = testing::ToDevice(x, DType::kFloat32);
    Tensor dw = testing::ToDevice(w, DType::kFloat32);
    Tensor dout = Tensor::Empty(DType::kFloat32, {16, 256}, Device::kCuda);
    ASSERT_TRUE(ops::RmsNorm(dx, dw, 1e-5f, dout).ok());
    Tensor got = testing::ToHostFloat(dout);  // To() waits for this stream
    EXPECT_TRUE(testing::ElementwiseNear(got, testing::ToDoubles(ref), 1e-5, 1e-6));
  }
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}
#endif  // TESSERA_HAVE_CUDA

}  // namespace
}  // namespace tessera
