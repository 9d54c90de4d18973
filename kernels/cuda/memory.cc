// CUDA runtime memory, copy and stream calls behind kernels/cuda/memory.h.
#include "kernels/cuda/memory.h"

#include <cuda_runtime.h>

#include "common/logging.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/tensor.h"

namespace tessera::cuda {
namespace {

cudaStream_t Current() { return static_cast<cudaStream_t>(CurrentCudaStream()); }

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
  const auto free_and_log = [p] {
    const cudaError_t err = cudaFree(p);
    // At process exit the runtime may be gone already: nothing is left to free.
    if (err != cudaSuccess && err != cudaErrorCudartUnloading) {
      spdlog::error("freeing CUDA memory {}: {}", p, CudaStatus(err, "cudaFree"));
    }
  };
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current != device) {
    // The last handle may be dropped by a thread using another device.
    if (cudaSetDevice(device) != cudaSuccess) return;
    free_and_log();
    cudaSetDevice(current);
    return;
  }
  free_and_log();
}

absl::StatusOr<void*> MallocPinned(size_t bytes) {
  void* p = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMallocHost(&p, bytes));
  return p;
}

void FreePinned(void* p) noexcept {
  const cudaError_t err = cudaFreeHost(p);
  if (err != cudaSuccess && err != cudaErrorCudartUnloading) {
    spdlog::error("freeing pinned memory {}: {}", p, CudaStatus(err, "cudaFreeHost"));
  }
}

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
