// NCCL result codes as absl::Status values that name the failed call and the
// code, like kernels/cuda/cuda_check.h does for CUDA and cuBLAS:
//   NCCL_RETURN_IF_ERROR(ncclAllReduce(...));
//   -> "ncclAllReduce failed: unhandled system error (ncclSystemError = 2): <detail>"
// The detail is ncclGetLastError's text when NCCL set one. Remote and system
// errors (a peer died, a socket closed) are UNAVAILABLE, invalid arguments or
// usage INVALID_ARGUMENT, anything else INTERNAL.
// Only for files compiled when TESSERA_HAVE_NCCL. Thread-safe: pure functions.
#pragma once

#include <nccl.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera::cuda {

// OK for ncclSuccess. `call` may be the whole stringified expression: from its
// first '(' on it is dropped.
absl::Status NcclStatus(ncclResult_t result, absl::string_view call);

}  // namespace tessera::cuda

#define NCCL_RETURN_IF_ERROR(expr)                                  \
  do {                                                              \
    const ncclResult_t tessera_nccl_res_ = (expr);                  \
    if (tessera_nccl_res_ != ncclSuccess) {                         \
      return ::tessera::cuda::NcclStatus(tessera_nccl_res_, #expr); \
    }                                                               \
  } while (0)
