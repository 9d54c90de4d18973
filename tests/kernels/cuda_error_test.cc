// The seam that consumes handled CUDA errors (kernels/cuda/cuda_check.h),
// without a GPU: the thread's "last error" is a fake, so the test shows what
// a handled failure leaves for the next launch check — nothing, unless the
// error is sticky — and what the status says. Built with the CUDA path only
// (it needs the CUDA headers); label unit.
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_check.h"

namespace tessera::cuda {
namespace {

// A fake of the runtime's per-thread last error: cudaGetLastError's contract
// (returns it and resets it, except a sticky error, which stays).
thread_local cudaError_t g_last = cudaSuccess;
thread_local int g_reads = 0;

cudaError_t FakeGetLastError() {
  ++g_reads;
  const cudaError_t e = g_last;
  if (ClassifyCudaError(e) != CudaErrorKind::kSticky) g_last = cudaSuccess;
  return e;
}

class CudaErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_last = cudaSuccess;
    g_reads = 0;
  }
  // What the check after the next kernel launch would report.
  static cudaError_t NextLaunchCheck() { return FakeGetLastError(); }
};

TEST_F(CudaErrorTest, ClassifiesStickyAndRecoverableErrors) {
  EXPECT_EQ(ClassifyCudaError(cudaSuccess), CudaErrorKind::kSuccess);
  for (cudaError_t e : {cudaErrorMemoryAllocation, cudaErrorInvalidValue,
                        cudaErrorStreamCaptureInvalidated, cudaErrorStreamCaptureUnsupported,
                        cudaErrorLaunchOutOfResources, cudaErrorInvalidConfiguration}) {
    EXPECT_EQ(ClassifyCudaError(e), CudaErrorKind::kRecoverable) << cudaGetErrorName(e);
  }
  for (cudaError_t e : {cudaErrorIllegalAddress, cudaErrorLaunchFailure, cudaErrorAssert,
                        cudaErrorMisalignedAddress, cudaErrorIllegalInstruction,
                        cudaErrorECCUncorrectable, cudaErrorLaunchTimeout}) {
    EXPECT_EQ(ClassifyCudaError(e), CudaErrorKind::kSticky) << cudaGetErrorName(e);
  }
}

TEST_F(CudaErrorTest, AHandledOutOfMemoryLeavesNothingForTheNextLaunch) {
  g_last = cudaErrorMemoryAllocation;  // what a failed cudaMalloc leaves
  const absl::Status s =
      ConsumeCudaError(cudaErrorMemoryAllocation, "cudaMalloc(&p, bytes)", &FakeGetLastError);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("cudaMalloc failed: cudaErrorMemoryAllocation"), std::string::npos)
      << s;
  EXPECT_EQ(g_reads, 1);
  EXPECT_EQ(NextLaunchCheck(), cudaSuccess);
}

TEST_F(CudaErrorTest, AFailedCaptureLeavesNothingForTheEagerFallback) {
  g_last = cudaErrorStreamCaptureInvalidated;
  const absl::Status s = ConsumeCudaError(cudaErrorStreamCaptureInvalidated, "cudaStreamEndCapture",
                                          &FakeGetLastError);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(NextLaunchCheck(), cudaSuccess);
  // And what a failed body leaves, consumed on its own.
  g_last = cudaErrorStreamCaptureUnsupported;
  EXPECT_EQ(ConsumeLastError(&FakeGetLastError), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(NextLaunchCheck(), cudaSuccess);
}

TEST_F(CudaErrorTest, AnEarlierPendingErrorIsNamedNotSilentlyDropped) {
  g_last = cudaErrorInvalidValue;
  const absl::Status s =
      ConsumeCudaError(cudaErrorMemoryAllocation, "cudaMalloc", &FakeGetLastError);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("cudaErrorInvalidValue"), std::string::npos) << s;
  EXPECT_EQ(NextLaunchCheck(), cudaSuccess);
}

TEST_F(CudaErrorTest, AStickyErrorIsReportedAsFatalAndStays) {
  g_last = cudaErrorIllegalAddress;
  const absl::Status s =
      ConsumeCudaError(cudaErrorIllegalAddress, "cudaStreamSynchronize", &FakeGetLastError);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("sticky"), std::string::npos) << s;
  EXPECT_NE(s.message().find("must restart"), std::string::npos) << s;
  EXPECT_EQ(NextLaunchCheck(), cudaErrorIllegalAddress);
}

TEST_F(CudaErrorTest, SuccessTouchesNothing) {
  g_last = cudaErrorInvalidValue;  // someone else's, still to be reported
  EXPECT_TRUE(ConsumeCudaError(cudaSuccess, "cudaFree", &FakeGetLastError).ok());
  EXPECT_TRUE(ConsumeCublasError(CUBLAS_STATUS_SUCCESS, "cublasLtMatmul", &FakeGetLastError).ok());
  EXPECT_EQ(g_reads, 0);
  EXPECT_EQ(NextLaunchCheck(), cudaErrorInvalidValue);
}

TEST_F(CudaErrorTest, AFailedCublasCallConsumesTheCudaErrorItLeft) {
  g_last = cudaErrorLaunchOutOfResources;  // of a kernel cuBLAS launched
  const absl::Status s = ConsumeCublasError(CUBLAS_STATUS_EXECUTION_FAILED,
                                            "cublasLtMatmul(handle, ...)", &FakeGetLastError);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("cublasLtMatmul failed: CUBLAS_STATUS_EXECUTION_FAILED"),
            std::string::npos)
      << s;
  EXPECT_NE(s.message().find("cudaErrorLaunchOutOfResources"), std::string::npos) << s;
  EXPECT_EQ(NextLaunchCheck(), cudaSuccess);
}

// The macro the kernels use returns the call's status and consumes it (here
// with the real runtime, which needs no device to record a failed call's
// argument error).
absl::Status FailingCall() {
  CUDA_RETURN_IF_ERROR(cudaErrorInvalidValue);
  return absl::OkStatus();
}

TEST_F(CudaErrorTest, TheReturnMacroReportsTheCall) {
  const absl::Status s = FailingCall();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("cudaErrorInvalidValue"), std::string::npos) << s;
}

}  // namespace
}  // namespace tessera::cuda
