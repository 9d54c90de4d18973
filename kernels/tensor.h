// Tensor: a small n-dimensional array handle (dtype, shape, device, data).
//
// A Tensor either owns its storage (shared: copies of the handle alias the same
// memory, like torch tensors) or is a view of memory someone else owns
// (`Tensor::View`, e.g. a memory-mapped weight file). Always contiguous,
// row-major. Copying a handle is cheap and never copies data.
// Thread-safety: a handle is a value; concurrent writes to the same memory are
// the caller's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {

enum class DType : uint8_t { kFloat32, kFloat16, kBFloat16, kInt32, kInt64 };
enum class Device : uint8_t { kCpu, kCuda };

size_t DTypeSize(DType dtype);
absl::string_view DTypeName(DType dtype);  // "float32", "float16", "bfloat16", "int32", "int64"
// Accepts the --dtype names: float32 (fp32), bfloat16 (bf16), float16 (fp16, half).
absl::StatusOr<DType> ParseDType(absl::string_view name);

// Element conversions used by weight loading and the reference paths.
float HalfToFloat(uint16_t h);
float BFloat16ToFloat(uint16_t b);
uint16_t FloatToHalf(float f);      // round to nearest even
uint16_t FloatToBFloat16(float f);  // round to nearest even
// Converts `n` elements of `src` (float32, float16 or bfloat16) to float32.
void ConvertToFloat32(const void* src, DType src_dtype, size_t n, float* dst);

class Tensor {
 public:
  Tensor() = default;

  // Allocates uninitialised CPU memory (64-byte aligned). Device::kCuda
  // allocation is provided by the CUDA path.
  static Tensor Empty(DType dtype, std::vector<int64_t> shape, Device device = Device::kCpu);
  static Tensor Zeros(DType dtype, std::vector<int64_t> shape, Device device = Device::kCpu);
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

 private:
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
  DType dtype_ = DType::kFloat32;
  Device device_ = Device::kCpu;
  std::vector<int64_t> shape_;
};

}  // namespace tessera
