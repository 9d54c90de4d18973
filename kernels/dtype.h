// DType: the element types of a Tensor (kernels/tensor.h), their sizes and
// names, the --dtype parser, and the float16 / bfloat16 <-> float32
// conversions used by weight loading and the reference paths.
// Thread-safe (pure functions).
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {

enum class DType : uint8_t { kFloat32, kFloat16, kBFloat16, kInt32, kInt64 };

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

}  // namespace tessera
