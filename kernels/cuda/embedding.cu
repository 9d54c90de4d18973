// Embedding (vocab-parallel lookup) and GatherRows: both copy whole rows
// selected by an int32 index, or write zeros where the index is outside the
// source. One thread block per output row; 16-byte copies when the row size
// and pointers allow, else 4- or 2-byte ones.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops_cuda.h"

namespace tessera::ops::cuda {
namespace {

// dst[i, :] = src[index[i] - offset, :] when that row is in [0, src_rows),
// else zeros. Rows are `units` elements of U (a 2-, 4- or 16-byte type).
template <typename U>
__global__ void CopyRowsKernel(const U* __restrict__ src, U* __restrict__ dst,
                               const int32_t* __restrict__ index, int64_t offset, int64_t src_rows,
                               int64_t units) {
  const int64_t i = blockIdx.x;
  const int64_t row = static_cast<int64_t>(index[i]) - offset;
  U* d = dst + i * units;
  if (row >= 0 && row < src_rows) {
    const U* s = src + row * units;
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) d[u] = s[u];
  } else {
    U zero;
    memset(&zero, 0, sizeof(U));
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) d[u] = zero;
  }
}

template <typename U>
absl::Status LaunchCopyRows(const void* src, void* dst, const int32_t* index, int64_t n,
                            int64_t offset, int64_t src_rows, int64_t row_bytes) {
  const int64_t units = row_bytes / static_cast<int64_t>(sizeof(U));
  int threads = static_cast<int>(units < 256 ? (units + 31) / 32 * 32 : 256);
  if (threads < 32) threads = 32;
  CopyRowsKernel<U><<<n, threads, 0, Stream()>>>(static_cast<const U*>(src), static_cast<U*>(dst),
                                                 index, offset, src_rows, units);
  CUDA_RETURN_IF_LAUNCH_ERROR("CopyRowsKernel");
  return absl::OkStatus();
}

absl::Status CopyRows(const Tensor& src, const Tensor& index, int64_t offset, Tensor& dst) {
  const int64_t n = index.dim(0);
  const int64_t row_bytes = src.dim(1) * static_cast<int64_t>(DTypeSize(src.dtype()));
  if (n == 0 || row_bytes == 0) return absl::OkStatus();
  const auto* idx = index.data_as<const int32_t>();
  const auto fits = [&](size_t bytes) {
    return row_bytes % static_cast<int64_t>(bytes) == 0 && Aligned(src.data(), bytes) &&
           Aligned(dst.data(), bytes);
  };
  if (fits(16)) {
    return LaunchCopyRows<uint4>(src.data(), dst.data(), idx, n, offset, src.dim(0), row_bytes);
  }
  if (fits(4)) {
    return LaunchCopyRows<uint32_t>(src.data(), dst.data(), idx, n, offset, src.dim(0), row_bytes);
  }
  // Floating dtypes are at least 2 bytes and tensors are element-aligned.
  return LaunchCopyRows<uint16_t>(src.data(), dst.data(), idx, n, offset, src.dim(0), row_bytes);
}

}  // namespace

absl::Status Embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out) {
  return CopyRows(table, ids, vocab_start, out);
}

absl::Status GatherRows(const Tensor& x, const Tensor& indices, Tensor& out) {
  return CopyRows(x, indices, 0, out);
}

}  // namespace tessera::ops::cuda
