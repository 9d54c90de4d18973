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

// Appends what consuming the last error found, unless it is `reported`.
absl::Status WithPending(absl::Status status, cudaError_t pending, cudaError_t reported) {
  if (pending == cudaSuccess || pending == reported) return status;
  return absl::Status(
      status.code(),
      absl::StrCat(status.message(), "; the thread's last CUDA error was another (now cleared): ",
                   cudaGetErrorName(pending), " (", static_cast<int>(pending),
                   "): ", cudaGetErrorString(pending)));
}

}  // namespace

CudaErrorKind ClassifyCudaError(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return CudaErrorKind::kSuccess;
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorPriorLaunchFailure:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorTensorMemoryLeak:
    case cudaErrorECCUncorrectable:
    case cudaErrorNvlinkUncorrectable:
    case cudaErrorContained:
    case cudaErrorExternalDevice:
      return CudaErrorKind::kSticky;
    default:  // cudaError_t has hundreds of values; the rest leave the context usable
      return CudaErrorKind::kRecoverable;
  }
}

cudaError_t ConsumeLastError(LastErrorFn get_last_error) { return get_last_error(); }

absl::Status ConsumeCudaError(cudaError_t err, absl::string_view call, LastErrorFn get_last_error) {
  switch (ClassifyCudaError(err)) {
    case CudaErrorKind::kSuccess:
      return absl::OkStatus();
    case CudaErrorKind::kRecoverable:
      return WithPending(CudaStatus(err, call), ConsumeLastError(get_last_error), err);
    case CudaErrorKind::kSticky: {
      const absl::Status status = CudaStatus(err, call);
      return absl::Status(status.code(),
                          absl::StrCat(status.message(),
                                       " (sticky: the CUDA context is unusable; the process "
                                       "must restart)"));
    }
  }
  return CudaStatus(err, call);
}

absl::Status ConsumeCublasError(cublasStatus_t status, absl::string_view call,
                                LastErrorFn get_last_error) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  const cudaError_t pending = ConsumeLastError(get_last_error);
  absl::Status out = WithPending(CublasStatus(status, call), pending, cudaSuccess);
  if (ClassifyCudaError(pending) == CudaErrorKind::kSticky) {
    out = absl::Status(out.code(), absl::StrCat(out.message(),
                                                " (sticky: the CUDA context is unusable; the "
                                                "process must restart)"));
  }
  return out;
}

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
