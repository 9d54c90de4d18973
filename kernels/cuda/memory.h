// Device memory, pinned host memory, copies and streams for kernels/tensor.cc
// and the CUDA ops: thin wrappers over the CUDA runtime that return Status.
// This header has no CUDA types (streams are void*), so CUDA-free code can
// include it; it is only compiled and linked when the CUDA path is built.
// Thread-safety: all functions are thread-safe (the CUDA runtime is).
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera::cuda {

// cudaGetDeviceCount, as a Status on failure (no driver, no device).
absl::StatusOr<int> DeviceCount();

// The calling thread's current device (cudaGetDevice).
absl::StatusOr<int> CurrentDevice();

// cudaMalloc of `bytes` (> 0) on the current device, which is stored in
// *device for Free. RESOURCE_EXHAUSTED when out of memory.
absl::StatusOr<void*> Malloc(size_t bytes, int* device);
// cudaFree on `device` (switching the current device for the call when it
// differs). Errors are logged: it runs in destructors.
void Free(void* p, int device) noexcept;

// Page-locked host memory (cudaMallocHost / cudaFreeHost).
absl::StatusOr<void*> MallocPinned(size_t bytes);
void FreePinned(void* p) noexcept;

// cudaMemcpyAsync(cudaMemcpyDefault) of `bytes` on the current stream; with
// `wait`, then cudaStreamSynchronize of that stream.
absl::Status Copy(void* dst, const void* src, size_t bytes, bool wait);

// Zeroes `bytes` of device memory on the current stream, then waits for it.
absl::Status ZeroAndWait(void* p, size_t bytes);

// cudaStreamSynchronize(stream) (nullptr: the legacy default stream).
absl::Status SynchronizeStream(void* stream);

}  // namespace tessera::cuda
