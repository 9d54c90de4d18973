// SiluAndMul: out[i, j] = silu(x[i, j]) * x[i, I + j], elementwise with
// 128-bit loads when I and the pointers allow them; float32 math.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops_cuda.h"

namespace tessera::ops::cuda {
namespace {

constexpr int kThreads = 256;

// grid (column chunks, rows): thread t of chunk c handles vector c*blockDim + t.
template <typename T, int VEC>
__global__ void SiluAndMulKernel(const T* __restrict__ x, T* __restrict__ out, int64_t inter) {
  const int64_t row = blockIdx.y;
  const int64_t v = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v * VEC >= inter) return;
  const T* gate = x + row * 2 * inter;
  const T* up = gate + inter;
  const Vec<T, VEC> g = LoadVec<T, VEC>(gate + v * VEC);
  const Vec<T, VEC> u = LoadVec<T, VEC>(up + v * VEC);
  Vec<T, VEC> o;
#pragma unroll
  for (int j = 0; j < VEC; ++j) {
    const float gf = ToFloat(g.v[j]);
    o.v[j] = FromFloat<T>(gf / (1.f + expf(-gf)) * ToFloat(u.v[j]));
  }
  StoreVec<T, VEC>(out + row * inter + v * VEC, o);
}

}  // namespace

absl::Status SiluAndMul(const Tensor& x, Tensor& out) {
  const int64_t n = out.dim(0), inter = out.dim(1);
  if (n == 0 || inter == 0) return absl::OkStatus();
  if (n > 65535) {
    // grid.y limit: split the rows.
    for (int64_t begin = 0; begin < n; begin += 65535) {
      const int64_t end = begin + 65535 < n ? begin + 65535 : n;
      Tensor xs = x.Slice(begin, end);
      Tensor os = out.Slice(begin, end);
      if (absl::Status s = SiluAndMul(xs, os); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  return DispatchFloat(x.dtype(), "SiluAndMul", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const auto* xp = x.data_as<const T>();
    auto* op = out.data_as<T>();
    constexpr int V = kVec16<T>;
    if (inter % V == 0 && Aligned(xp, 16) && Aligned(op, 16)) {
      const dim3 grid((inter / V + kThreads - 1) / kThreads, n);
      SiluAndMulKernel<T, V><<<grid, kThreads, 0, Stream()>>>(xp, op, inter);
    } else {
      const dim3 grid((inter + kThreads - 1) / kThreads, n);
      SiluAndMulKernel<T, 1><<<grid, kThreads, 0, Stream()>>>(xp, op, inter);
    }
    CUDA_RETURN_IF_LAUNCH_ERROR("SiluAndMulKernel");
    return absl::OkStatus();
  });
}

}  // namespace tessera::ops::cuda
