#include "worker/model/shard_copy.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tessera::shard_copy {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::Status CheckTargetDType(const std::string& name, DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16:
      return absl::OkStatus();
    case DType::kInt32:
    case DType::kInt64:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("cannot load tensor \"", name, "\" as ",
                                                 DTypeName(dtype),
                                                 ": weights load as float32, float16 or "
                                                 "bfloat16"));
}

ShardLayout Layout(const std::vector<int64_t>& full, const ShardSpec& shard) {
  ShardLayout l;
  if (shard.dim < 0) {
    l.chunk = 1;
    for (int64_t d : full) l.chunk *= d;
    return l;
  }
  int64_t inner = 1;
  for (size_t i = shard.dim + 1; i < full.size(); ++i) inner *= full[i];
  for (int i = 0; i < shard.dim; ++i) l.outer *= full[i];
  l.chunk = (shard.end - shard.begin) * inner;
  l.src_begin = shard.begin * inner;
  l.src_stride = full[shard.dim] * inner;
  return l;
}

void StoreFloats(const float* src, DType dtype, void* dst, int64_t n) {
  switch (dtype) {
    case DType::kFloat32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kFloat16: {
      uint16_t* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = FloatToHalf(src[i]);
      return;
    }
    case DType::kBFloat16: {
      uint16_t* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = FloatToBFloat16(src[i]);
      return;
    }
    case DType::kInt32:
    case DType::kInt64:
      return;  // excluded by CheckTargetDType
  }
}

void ConvertElements(const uint8_t* src, DType src_dtype, uint8_t* dst, DType dst_dtype,
                     int64_t n) {
  if (src_dtype == dst_dtype) {
    std::memcpy(dst, src, n * DTypeSize(src_dtype));
    return;
  }
  if (dst_dtype == DType::kFloat32) {
    ConvertToFloat32(src, src_dtype, n, reinterpret_cast<float*>(dst));
    return;
  }
  constexpr int64_t kTile = 1024;
  float tmp[kTile];
  for (int64_t i = 0; i < n; i += kTile) {
    const int64_t m = std::min(kTile, n - i);
    ConvertToFloat32(src + i * DTypeSize(src_dtype), src_dtype, m, tmp);
    StoreFloats(tmp, dst_dtype, dst + i * DTypeSize(dst_dtype), m);
  }
}

}  // namespace tessera::shard_copy
