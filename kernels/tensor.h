// Tensor: a small n-dimensional array handle (dtype, shape, device, data).
//
// A Tensor either owns its storage (shared: copies of the handle alias the same
// memory, like torch tensors) or is a view of memory someone else owns
// (`Tensor::View`, e.g. a memory-mapped weight file). Always contiguous,
// row-major. Copying a handle is cheap and never copies data.
// Thread-safety: a handle is a value; concurrent writes to the same memory are
// the caller's business.
//
// CUDA tensors (Device::kCuda) live in the memory of the calling thread's
// current CUDA device, allocated with cudaMalloc and freed with cudaFree when
// the last handle goes (cudaFree waits for the device: allocate long-lived
// buffers once and reuse them, never in a step's hot path). Their data()
// pointer is a device pointer: never dereference it on the host. Copies and
// CUDA ops are enqueued on the calling thread's current stream
// (CurrentCudaStream()). The element types (DType) are in kernels/dtype.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/dtype.h"

namespace tessera {

enum class Device : uint8_t { kCpu, kCuda };

class Tensor {
 public:
  Tensor() = default;

  // Allocates uninitialised memory: CPU (64-byte aligned) or CUDA (cudaMalloc,
  // 256-byte aligned). Aborts with a message when the memory cannot be had
  // (out of memory, no device, CUDA path not built): use TryEmpty where that
  // can happen for a reason other than a bug (e.g. sizing the KV cache).
  static Tensor Empty(DType dtype, std::vector<int64_t> shape, Device device = Device::kCpu);
  // Empty, then zero-filled. For CUDA: cudaMemsetAsync on the current stream,
  // then waits for that stream, so the zeros are visible to any later work.
  static Tensor Zeros(DType dtype, std::vector<int64_t> shape, Device device = Device::kCpu);
  // Empty that reports failure instead of aborting: RESOURCE_EXHAUSTED when
  // the device is out of memory, FAILED_PRECONDITION when the CUDA path is not
  // built, else the CUDA call's error (see kernels/cuda/cuda_check.h).
  static absl::StatusOr<Tensor> TryEmpty(DType dtype, std::vector<int64_t> shape,
                                         Device device = Device::kCpu);
  // A CPU tensor in page-locked (pinned) host memory (cudaMallocHost), so
  // CopyFromAsync to/from the device is truly asynchronous and can be captured
  // in a CUDA graph. Without the CUDA path (or without a device) it is
  // ordinary aligned CPU memory. Aborts like Empty on failure.
  static Tensor EmptyPinned(DType dtype, std::vector<int64_t> shape);
  // Non-owning view of `data`; the caller keeps it alive while the view is used.
  static Tensor View(void* data, DType dtype, std::vector<int64_t> shape,
                     Device device = Device::kCpu);
  // Owning CPU float32 / int32 tensors holding a copy of `values`.
  static Tensor FromFloats(const std::vector<float>& values, std::vector<int64_t> shape);
  static Tensor FromInts(const std::vector<int32_t>& values, std::vector<int64_t> shape);

  bool defined() const { return data_ != nullptr || numel() == 0; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + ndim() : i]; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }

  void* data() const { return data_; }
  template <typename T>
  T* data_as() const {
    return static_cast<T*>(data_);
  }

  // A view with another shape of the same number of elements (shares storage).
  Tensor Reshape(std::vector<int64_t> shape) const;
  // A view of rows [begin, end) along dimension 0 (shares storage).
  Tensor Slice(int64_t begin, int64_t end) const;

  std::string ShapeString() const;  // e.g. "[4, 64]"

  // A copy of this tensor on `device` (always a new allocation, also when
  // device == this->device()). Synchronous: it returns once the data has
  // arrived (it waits for the current stream, so earlier work on that stream
  // that writes this tensor is included). Errors: FAILED_PRECONDITION when a
  // CUDA tensor is involved and the CUDA path is not built; the CUDA call's
  // error otherwise.
  absl::StatusOr<Tensor> To(Device device) const;

  // Copies src's bytes into this tensor. Requires the same dtype and number of
  // elements (shapes may differ) and both defined; any pair of devices.
  // INVALID_ARGUMENT otherwise. CopyFrom waits for the current stream to finish
  // the copy; CopyFromAsync only enqueues it (device <-> device, or host <->
  // device with the host side kept alive and untouched until the stream gets
  // there; pinned host memory makes it asynchronous and graph-capturable). A
  // CPU -> CPU copy is a plain memcpy in both.
  absl::Status CopyFrom(const Tensor& src);
  absl::Status CopyFromAsync(const Tensor& src);

 private:
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
  DType dtype_ = DType::kFloat32;
  Device device_ = Device::kCpu;
  std::vector<int64_t> shape_;
};

// ---- CUDA device and stream --------------------------------------------------
// These compile and link with or without the CUDA path.

// Whether this binary has the CUDA path (kernels/cuda/) built in.
bool CudaBuilt();

// Number of CUDA devices this process can use. FAILED_PRECONDITION "CUDA path
// not built" without the CUDA path; the cudaGetDeviceCount error (e.g.
// cudaErrorNoDevice, cudaErrorInsufficientDriver) when there is no usable
// driver; 0 or more otherwise. GPU tests skip unless this is ok and >= 1.
absl::StatusOr<int> CudaDeviceCount();

// The CUDA stream (a cudaStream_t, as void*) that CUDA ops, copies and
// Tensor::Zeros of the calling thread are enqueued on. Thread-local; nullptr
// (the default) is the legacy default stream. The stream must outlive its use;
// the caller creates and destroys it. Use a non-default stream to capture CUDA
// graphs.
void* CurrentCudaStream();
void SetCurrentCudaStream(void* stream);

// Makes `stream` the calling thread's current stream for its lifetime, then
// restores the previous one. Not copyable.
class ScopedCudaStream {
 public:
  explicit ScopedCudaStream(void* stream) : previous_(CurrentCudaStream()) {
    SetCurrentCudaStream(stream);
  }
  ~ScopedCudaStream() { SetCurrentCudaStream(previous_); }
  ScopedCudaStream(const ScopedCudaStream&) = delete;
  ScopedCudaStream& operator=(const ScopedCudaStream&) = delete;

 private:
  void* previous_;
};

// Waits until all work enqueued on the current stream has finished. Returns
// the first error of that work (e.g. an illegal address in a kernel), named as
// "cudaStreamSynchronize failed: ...". OK without the CUDA path.
absl::Status SynchronizeCurrentStream();

}  // namespace tessera
