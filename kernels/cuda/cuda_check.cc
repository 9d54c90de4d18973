#include "kernels/cuda/cuda_check.h"

#include "absl/strings/str_cat.h"

namespace tessera::cuda {
namespace {

absl::string_view CallName(absl::string_view call) {
  const size_t paren = call.find('(');
  return paren == absl::string_view::npos ? call : call.substr(0, paren);
}

absl::StatusCode CodeFor(cudaError_t err) {
  switch (err) {
    case cudaErrorMemoryAllocation:
      return absl::StatusCode::kResourceExhausted;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorNoKernelImageForDevice:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::StatusCode CodeFor(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_ALLOC_FAILED:
      return absl::StatusCode::kResourceExhausted;
    case CUBLAS_STATUS_NOT_SUPPORTED:
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return absl::StatusCode::kUnimplemented;
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status CudaStatus(cudaError_t err, absl::string_view call) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::Status(CodeFor(err),
                      absl::StrCat(CallName(call), " failed: ", cudaGetErrorName(err), " (",
                                   static_cast<int>(err), "): ", cudaGetErrorString(err)));
}

absl::Status CublasStatus(cublasStatus_t status, absl::string_view call) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::Status(CodeFor(status),
                      absl::StrCat(CallName(call), " failed: ", cublasGetStatusName(status), " (",
                                   static_cast<int>(status), "): ", cublasGetStatusString(status)));
}

absl::Status LaunchStatus(absl::string_view kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return absl::OkStatus();
  return CudaStatus(err, absl::StrCat("launching ", kernel));
}

}  // namespace tessera::cuda
