// Turning CUDA runtime and cuBLAS(Lt) error codes into absl::Status values
// that name the failed call and the code, e.g.
//   CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, s));
//   -> "cudaMemcpyAsync failed: cudaErrorInvalidValue (1): invalid argument"
// CUDA-only (includes the CUDA headers). Thread-safe: pure functions.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera::cuda {

// `call` may be the whole stringified expression: everything from its first
// '(' on is dropped, so "cudaFree(p)" names "cudaFree". The status code is
// RESOURCE_EXHAUSTED for out-of-memory, FAILED_PRECONDITION for a missing or
// unusable device/driver, INTERNAL otherwise.
absl::Status CudaStatus(cudaError_t err, absl::string_view call);
absl::Status CublasStatus(cublasStatus_t status, absl::string_view call);

// The error of the last kernel launch on this thread (cudaGetLastError), as
// "launching <kernel> failed: ..."; OK when there was none.
absl::Status LaunchStatus(absl::string_view kernel);

// ---- Consuming handled errors --------------------------------------------
// A failed runtime call also leaves its error as the thread's "last error",
// which the next cudaGetLastError — the check after the next kernel launch —
// would report as that launch's failure. Wherever a failure is handled
// (returned as a Status, logged, worked around), the last error must be
// consumed; only sticky errors survive that, and those mean the context is
// lost for good.
enum class CudaErrorKind {
  kSuccess,
  // The call failed but the context is fine (out of memory, invalid value,
  // capture invalidated, ...): cudaGetLastError clears it.
  kRecoverable,
  // A kernel faulted or the hardware failed (illegal address, launch
  // failure, ECC, ...): every later call fails; the process must restart.
  kSticky,
};
CudaErrorKind ClassifyCudaError(cudaError_t err);

// How the thread's last error is read and cleared; cudaGetLastError in
// production, a fake in tests (which need no GPU).
using LastErrorFn = cudaError_t (*)();

// Reads and clears the thread's last error; returns it (cudaSuccess when there
// was none). A sticky error stays: later calls report it again.
cudaError_t ConsumeLastError(LastErrorFn get_last_error = &cudaGetLastError);

// The status for `err` from `call` (CudaStatus), after consuming the thread's
// last error when `err` is recoverable. A different error that was pending
// is named in the message (it was never reported, and is now cleared); a
// sticky `err` says the context is unusable. OK (and nothing consumed) for
// cudaSuccess.
absl::Status ConsumeCudaError(cudaError_t err, absl::string_view call,
                              LastErrorFn get_last_error = &cudaGetLastError);

// As ConsumeCudaError for a failed cuBLAS(Lt) call, which may have left a
// CUDA error behind (e.g. of a kernel it launched): that error is consumed
// and named in the message. OK (and nothing consumed) on success.
absl::Status ConsumeCublasError(cublasStatus_t status, absl::string_view call,
                                LastErrorFn get_last_error = &cudaGetLastError);

}  // namespace tessera::cuda

// Returns the failure as a Status and consumes it (ConsumeCudaError): the
// caller handles it, so the next launch check must not see it again.
#define CUDA_RETURN_IF_ERROR(expr)                                        \
  do {                                                                    \
    const cudaError_t tessera_cuda_err_ = (expr);                         \
    if (tessera_cuda_err_ != cudaSuccess) {                               \
      return ::tessera::cuda::ConsumeCudaError(tessera_cuda_err_, #expr); \
    }                                                                     \
  } while (0)

#define CUBLAS_RETURN_IF_ERROR(expr)                                         \
  do {                                                                       \
    const cublasStatus_t tessera_cublas_st_ = (expr);                        \
    if (tessera_cublas_st_ != CUBLAS_STATUS_SUCCESS) {                       \
      return ::tessera::cuda::ConsumeCublasError(tessera_cublas_st_, #expr); \
    }                                                                        \
  } while (0)

// After a <<<...>>> launch: returns "launching <name> failed: ..." on error.
#define CUDA_RETURN_IF_LAUNCH_ERROR(name)                                    \
  do {                                                                       \
    ::absl::Status tessera_launch_st_ = ::tessera::cuda::LaunchStatus(name); \
    if (!tessera_launch_st_.ok()) return tessera_launch_st_;                 \
  } while (0)
