// CUDA runtime memory, copy and stream calls behind kernels/cuda/memory.h.
#include "kernels/cuda/memory.h"

#include <cuda_runtime.h>

#include "common/logging.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/tensor.h"

namespace tessera::cuda {
namespace {

cudaStream_t Current() { return static_cast<cudaStream_t>(CurrentCudaStream()); }

// Logs a failure that Free/FreePinned handle by carrying on, and consumes it
// so that the thread's next launch check does not report it.
void LogAndConsume(cudaError_t err, absl::string_view call, const void* p) {
  const absl::Status status = ConsumeCudaError(err, call);
  // At process exit the runtime may be gone already: nothing is left to free.
  if (!status.ok() && err != cudaErrorCudartUnloading) {
    spdlog::error("freeing device/pinned memory {}: {}", p, status);
  }
}

}  // namespace

absl::StatusOr<int> DeviceCount() {
  int n = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&n));
  return n;
}

absl::StatusOr<int> CurrentDevice() {
  int d = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&d));
  return d;
}

absl::StatusOr<void*> Malloc(size_t bytes, int* device) {
  CUDA_RETURN_IF_ERROR(cudaGetDevice(device));
  void* p = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMalloc(&p, bytes));
  return p;
}

void Free(void* p, int device) noexcept {
  int current = -1;
  const cudaError_t got = cudaGetDevice(&current);
  if (got != cudaSuccess) {
    LogAndConsume(got, "cudaGetDevice", p);
  } else if (current != device) {
    // The last handle may be dropped by a thread using another device.
    const cudaError_t set = cudaSetDevice(device);
    if (set != cudaSuccess) {
      LogAndConsume(set, "cudaSetDevice", p);
      return;
    }
    LogAndConsume(cudaFree(p), "cudaFree", p);
    LogAndConsume(cudaSetDevice(current), "cudaSetDevice", p);
    return;
  }
  LogAndConsume(cudaFree(p), "cudaFree", p);
}

absl::StatusOr<void*> MallocPinned(size_t bytes) {
  void* p = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMallocHost(&p, bytes));
  return p;
}

void FreePinned(void* p) noexcept { LogAndConsume(cudaFreeHost(p), "cudaFreeHost", p); }

absl::Status Copy(void* dst, const void* src, size_t bytes, bool wait) {
  if (bytes == 0) return absl::OkStatus();
  const cudaStream_t stream = Current();
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
  if (wait) CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return absl::OkStatus();
}

absl::Status ZeroAndWait(void* p, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  const cudaStream_t stream = Current();
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(p, 0, bytes, stream));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return absl::OkStatus();
}

absl::Status SynchronizeStream(void* stream) {
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  return absl::OkStatus();
}

}  // namespace tessera::cuda
