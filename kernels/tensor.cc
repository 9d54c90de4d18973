// Tensor handles of kernels/tensor.h: allocation (CPU, pinned, CUDA), views,
// reshapes and slices, copies between devices, and the current CUDA stream.
// The element types (DType) are in dtype.cc.
#include "kernels/tensor.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#if TESSERA_HAVE_CUDA
#include "kernels/cuda/memory.h"
#endif

namespace tessera {
namespace {

constexpr size_t kCpuAlignment = 64;

// Aborts with `message`: used where the Tensor API has no Status to return
// (a programming error, like std::vector::at without exceptions).
[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "tessera::Tensor: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

int64_t ShapeNumel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void CheckShape(const std::vector<int64_t>& shape) {
  for (int64_t d : shape) {
    if (d < 0) Die(absl::StrCat("negative dimension in shape [", absl::StrJoin(shape, ", "), "]"));
  }
}

[[maybe_unused]] absl::Status CudaNotBuilt() {
  return absl::FailedPreconditionError(
      "the CUDA path is not built yet (this binary has only the CPU kernels)");
}

thread_local void* g_current_stream = nullptr;

}  // namespace

Tensor Tensor::Empty(DType dtype, std::vector<int64_t> shape, Device device) {
  CheckShape(shape);
  const std::string what = absl::StrCat(DTypeName(dtype), " [", absl::StrJoin(shape, ", "), "]");
  absl::StatusOr<Tensor> t = TryEmpty(dtype, std::move(shape), device);
  if (!t.ok()) {
    switch (device) {
      case Device::kCpu:
        Die(absl::StrCat("out of memory allocating ", what, ": ", t.status().message()));
      case Device::kCuda:
        Die(absl::StrCat("cannot allocate a CUDA tensor ", what, ": ", t.status().message()));
    }
  }
  return *std::move(t);
}

absl::StatusOr<Tensor> Tensor::TryEmpty(DType dtype, std::vector<int64_t> shape, Device device) {
  CheckShape(shape);
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = device;
  t.shape_ = std::move(shape);
  const size_t bytes = t.nbytes();
  switch (device) {
    case Device::kCpu:
      break;
    case Device::kCuda: {
#if TESSERA_HAVE_CUDA
      if (bytes == 0) return t;
      int ordinal = 0;
      absl::StatusOr<void*> p = cuda::Malloc(bytes, &ordinal);
      if (!p.ok()) return p.status();
      t.storage_ = std::shared_ptr<void>(*p, [ordinal](void* q) { cuda::Free(q, ordinal); });
      t.data_ = *p;
      return t;
#else
      return CudaNotBuilt();
#endif
    }
  }
  if (bytes == 0) return t;
  // std::aligned_alloc wants a size that is a multiple of the alignment.
  const size_t padded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* p = std::aligned_alloc(kCpuAlignment, padded);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("aligned_alloc of ", padded, " bytes failed"));
  }
  t.storage_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data_ = p;
  return t;
}

Tensor Tensor::EmptyPinned(DType dtype, std::vector<int64_t> shape) {
#if TESSERA_HAVE_CUDA
  CheckShape(shape);
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = Device::kCpu;
  t.shape_ = std::move(shape);
  const size_t bytes = t.nbytes();
  if (bytes == 0) return t;
  absl::StatusOr<int> devices = cuda::DeviceCount();
  if (devices.ok() && *devices > 0) {
    absl::StatusOr<void*> p = cuda::MallocPinned(bytes);
    if (!p.ok()) {
      Die(absl::StrCat("cannot allocate pinned ", DTypeName(dtype), " ", t.ShapeString(), ": ",
                       p.status().message()));
    }
    t.storage_ = std::shared_ptr<void>(*p, [](void* q) { cuda::FreePinned(q); });
    t.data_ = *p;
    return t;
  }
  return Empty(dtype, std::move(t.shape_));  // no device: ordinary memory
#else
  return Empty(dtype, std::move(shape));
#endif
}

Tensor Tensor::Zeros(DType dtype, std::vector<int64_t> shape, Device device) {
  Tensor t = Empty(dtype, std::move(shape), device);
  if (t.data_ == nullptr) return t;
  switch (device) {
    case Device::kCpu:
      std::memset(t.data_, 0, t.nbytes());
      break;
    case Device::kCuda: {
#if TESSERA_HAVE_CUDA
      if (absl::Status s = cuda::ZeroAndWait(t.data_, t.nbytes()); !s.ok()) {
        Die(absl::StrCat("cannot zero a CUDA tensor ", DTypeName(dtype), " ", t.ShapeString(), ": ",
                         s.message()));
      }
#endif
      break;
    }
  }
  return t;
}

Tensor Tensor::View(void* data, DType dtype, std::vector<int64_t> shape, Device device) {
  CheckShape(shape);
  Tensor t;
  t.data_ = data;
  t.dtype_ = dtype;
  t.device_ = device;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::FromFloats(const std::vector<float>& values, std::vector<int64_t> shape) {
  if (ShapeNumel(shape) != static_cast<int64_t>(values.size())) {
    Die(absl::StrCat("FromFloats: ", values.size(), " values do not fill shape [",
                     absl::StrJoin(shape, ", "), "]"));
  }
  Tensor t = Empty(DType::kFloat32, std::move(shape));
  if (!values.empty()) std::memcpy(t.data_, values.data(), t.nbytes());
  return t;
}

Tensor Tensor::FromInts(const std::vector<int32_t>& values, std::vector<int64_t> shape) {
  if (ShapeNumel(shape) != static_cast<int64_t>(values.size())) {
    Die(absl::StrCat("FromInts: ", values.size(), " values do not fill shape [",
                     absl::StrJoin(shape, ", "), "]"));
  }
  Tensor t = Empty(DType::kInt32, std::move(shape));
  if (!values.empty()) std::memcpy(t.data_, values.data(), t.nbytes());
  return t;
}

int64_t Tensor::numel() const { return ShapeNumel(shape_); }

Tensor Tensor::Reshape(std::vector<int64_t> shape) const {
  // One dimension may be -1: inferred from the others.
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1 && infer < 0) {
      infer = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0 && known > 0 && numel() % known == 0) shape[infer] = numel() / known;
  CheckShape(shape);
  if (ShapeNumel(shape) != numel()) {
    Die(absl::StrCat("cannot reshape ", ShapeString(), " (", numel(), " elements) to [",
                     absl::StrJoin(shape, ", "), "]"));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::Slice(int64_t begin, int64_t end) const {
  if (ndim() == 0 || begin < 0 || begin > end || end > shape_[0]) {
    Die(absl::StrCat("slice [", begin, ", ", end, ") out of range for ", ShapeString()));
  }
  Tensor t = *this;
  t.shape_[0] = end - begin;
  const int64_t row = shape_[0] == 0 ? 0 : numel() / shape_[0];
  if (data_ != nullptr) {
    t.data_ = static_cast<char*>(data_) + begin * row * static_cast<int64_t>(DTypeSize(dtype_));
  }
  return t;
}

std::string Tensor::ShapeString() const {
  return absl::StrCat("[", absl::StrJoin(shape_, ", "), "]");
}

absl::StatusOr<Tensor> Tensor::To(Device device) const {
  if (!defined()) return absl::InvalidArgumentError("Tensor::To: undefined tensor");
  absl::StatusOr<Tensor> t = TryEmpty(dtype_, shape_, device);
  if (!t.ok()) return t.status();
  if (absl::Status s = t->CopyFrom(*this); !s.ok()) return s;
  return t;
}

absl::Status Tensor::CopyFrom(const Tensor& src) {
  if (!defined() || !src.defined() || dtype_ != src.dtype_ || numel() != src.numel()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Tensor::CopyFrom: needs defined tensors of one dtype and size; destination ",
                     DTypeName(dtype_), " ", ShapeString(), ", source ", DTypeName(src.dtype_), " ",
                     src.ShapeString()));
  }
  if (nbytes() == 0 || data_ == src.data_) return absl::OkStatus();
  if (device_ == Device::kCpu && src.device_ == Device::kCpu) {
    std::memmove(data_, src.data_, nbytes());
    return absl::OkStatus();
  }
#if TESSERA_HAVE_CUDA
  return cuda::Copy(data_, src.data_, nbytes(), /*wait=*/true);
#else
  return CudaNotBuilt();
#endif
}

absl::Status Tensor::CopyFromAsync(const Tensor& src) {
  if (!defined() || !src.defined() || dtype_ != src.dtype_ || numel() != src.numel()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Tensor::CopyFromAsync: needs defined tensors of one dtype and size; destination ",
        DTypeName(dtype_), " ", ShapeString(), ", source ", DTypeName(src.dtype_), " ",
        src.ShapeString()));
  }
  if (nbytes() == 0 || data_ == src.data_) return absl::OkStatus();
  if (device_ == Device::kCpu && src.device_ == Device::kCpu) {
    std::memmove(data_, src.data_, nbytes());
    return absl::OkStatus();
  }
#if TESSERA_HAVE_CUDA
  return cuda::Copy(data_, src.data_, nbytes(), /*wait=*/false);
#else
  return CudaNotBuilt();
#endif
}

bool CudaBuilt() { return TESSERA_HAVE_CUDA != 0; }

absl::StatusOr<int> CudaDeviceCount() {
#if TESSERA_HAVE_CUDA
  return cuda::DeviceCount();
#else
  return CudaNotBuilt();
#endif
}

void* CurrentCudaStream() { return g_current_stream; }
void SetCurrentCudaStream(void* stream) { g_current_stream = stream; }

absl::Status SynchronizeCurrentStream() {
#if TESSERA_HAVE_CUDA
  return cuda::SynchronizeStream(g_current_stream);
#else
  return absl::OkStatus();
#endif
}

}  // namespace tessera
