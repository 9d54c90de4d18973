// RmsNorm and FusedAddRmsNorm: one thread block per row, 128-bit loads when
// the row allows them, float32 sum of squares reduced with warp shuffles.
// Each row is read twice (sum of squares, then scale); the second read mostly
// hits L1/L2.
#include <initializer_list>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops_cuda.h"

namespace tessera::ops::cuda {
namespace {

// out = x / sqrt(mean(x^2) + eps) * w, as the CPU computes it:
// inv = 1 / sqrt(sum / h + eps); out = (x * inv) * w.
template <typename T, int VEC>
__global__ void RmsNormKernel(const T* x, const T* __restrict__ w, T* out, int64_t h, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * h;
  T* orow = out + row * h;
  const int64_t nvec = h / VEC;
  float sum = 0.f;
  for (int64_t v = threadIdx.x; v < nvec; v += blockDim.x) {
    const Vec<T, VEC> a = LoadVec<T, VEC>(xr + v * VEC);
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      const float f = ToFloat(a.v[j]);
      sum += f * f;
    }
  }
  sum = BlockSum(sum, scratch);
  const float inv = 1.f / sqrtf(sum / static_cast<float>(h) + eps);
  for (int64_t v = threadIdx.x; v < nvec; v += blockDim.x) {
    const Vec<T, VEC> a = LoadVec<T, VEC>(xr + v * VEC);  // out may be x: same thread, same slot
    const Vec<T, VEC> g = LoadVec<T, VEC>(w + v * VEC);
    Vec<T, VEC> o;
#pragma unroll
    for (int j = 0; j < VEC; ++j) o.v[j] = FromFloat<T>(ToFloat(a.v[j]) * inv * ToFloat(g.v[j]));
    StoreVec<T, VEC>(orow + v * VEC, o);
  }
}

// residual += x (rounded to T), then x = RmsNorm(residual) * w.
template <typename T, int VEC>
__global__ void FusedAddRmsNormKernel(T* __restrict__ x, T* __restrict__ residual,
                                      const T* __restrict__ w, int64_t h, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  T* xr = x + row * h;
  T* rr = residual + row * h;
  const int64_t nvec = h / VEC;
  float sum = 0.f;
  for (int64_t v = threadIdx.x; v < nvec; v += blockDim.x) {
    const Vec<T, VEC> a = LoadVec<T, VEC>(xr + v * VEC);
    Vec<T, VEC> r = LoadVec<T, VEC>(rr + v * VEC);
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      r.v[j] = FromFloat<T>(ToFloat(r.v[j]) + ToFloat(a.v[j]));
      const float f = ToFloat(r.v[j]);
      sum += f * f;
    }
    StoreVec<T, VEC>(rr + v * VEC, r);
  }
  sum = BlockSum(sum, scratch);
  const float inv = 1.f / sqrtf(sum / static_cast<float>(h) + eps);
  for (int64_t v = threadIdx.x; v < nvec; v += blockDim.x) {
    const Vec<T, VEC> r = LoadVec<T, VEC>(rr + v * VEC);  // written by this thread above
    const Vec<T, VEC> g = LoadVec<T, VEC>(w + v * VEC);
    Vec<T, VEC> o;
#pragma unroll
    for (int j = 0; j < VEC; ++j) o.v[j] = FromFloat<T>(ToFloat(r.v[j]) * inv * ToFloat(g.v[j]));
    StoreVec<T, VEC>(xr + v * VEC, o);
  }
}

// Threads per row: enough for one vector each, a multiple of 32, <= 1024.
int ThreadsFor(int64_t vectors) {
  int64_t t = (vectors + 31) / 32 * 32;
  if (t < 32) t = 32;
  if (t > 1024) t = 1024;
  return static_cast<int>(t);
}

template <typename T>
bool CanVectorize(int64_t h, std::initializer_list<const void*> ptrs) {
  if (h % kVec16<T> != 0) return false;
  for (const void* p : ptrs) {
    if (!Aligned(p, 16)) return false;
  }
  return true;
}

}  // namespace

absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  const int64_t rows = x.dim(0), h = x.dim(1);
  if (rows == 0 || h == 0) return absl::OkStatus();
  return DispatchFloat(x.dtype(), "RmsNorm", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const auto* xp = x.data_as<const T>();
    const auto* wp = weight.data_as<const T>();
    auto* op = out.data_as<T>();
    if (CanVectorize<T>(h, {xp, wp, op})) {
      constexpr int V = kVec16<T>;
      RmsNormKernel<T, V><<<rows, ThreadsFor(h / V), 0, Stream()>>>(xp, wp, op, h, eps);
    } else {
      RmsNormKernel<T, 1><<<rows, ThreadsFor(h), 0, Stream()>>>(xp, wp, op, h, eps);
    }
    CUDA_RETURN_IF_LAUNCH_ERROR("RmsNormKernel");
    return absl::OkStatus();
  });
}

absl::Status FusedAddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps) {
  const int64_t rows = x.dim(0), h = x.dim(1);
  if (rows == 0 || h == 0) return absl::OkStatus();
  return DispatchFloat(x.dtype(), "FusedAddRmsNorm", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    auto* xp = x.data_as<T>();
    auto* rp = residual.data_as<T>();
    const auto* wp = weight.data_as<const T>();
    if (CanVectorize<T>(h, {xp, rp, wp})) {
      constexpr int V = kVec16<T>;
      FusedAddRmsNormKernel<T, V><<<rows, ThreadsFor(h / V), 0, Stream()>>>(xp, rp, wp, h, eps);
    } else {
      FusedAddRmsNormKernel<T, 1><<<rows, ThreadsFor(h), 0, Stream()>>>(xp, rp, wp, h, eps);
    }
    CUDA_RETURN_IF_LAUNCH_ERROR("FusedAddRmsNormKernel");
    return absl::OkStatus();
  });
}

}  // namespace tessera::ops::cuda
