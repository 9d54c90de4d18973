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

}  // namespace tessera::cuda

#define CUDA_RETURN_IF_ERROR(expr)                                  \
  do {                                                              \
    const cudaError_t tessera_cuda_err_ = (expr);                   \
    if (tessera_cuda_err_ != cudaSuccess) {                         \
      return ::tessera::cuda::CudaStatus(tessera_cuda_err_, #expr); \
    }                                                               \
  } while (0)

#define CUBLAS_RETURN_IF_ERROR(expr)                                   \
  do {                                                                 \
    const cublasStatus_t tessera_cublas_st_ = (expr);                  \
    if (tessera_cublas_st_ != CUBLAS_STATUS_SUCCESS) {                 \
      return ::tessera::cuda::CublasStatus(tessera_cublas_st_, #expr); \
    }                                                                  \
  } while (0)

// After a <<<...>>> launch: returns "launching <name> failed: ..." on error.
#define CUDA_RETURN_IF_LAUNCH_ERROR(name)                                    \
  do {                                                                       \
    ::absl::Status tessera_launch_st_ = ::tessera::cuda::LaunchStatus(name); \
    if (!tessera_launch_st_.ok()) return tessera_launch_st_;                 \
  } while (0)
