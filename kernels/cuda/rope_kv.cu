// ApplyRope, KvStore and the fused RopeAndKvStore: one thread block per token.
// Rotation pairs (x[j], x[hd/2 + j]) are handled VEC at a time with 128-bit
// loads when hd/2 allows; the rotated key and the value are written to the
// paged cache [num_blocks, block_size, nkv, hd] at the token's slot by the
// same thread that produced them, so one kernel does both.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops_cuda.h"

namespace tessera::ops::cuda {
namespace {

constexpr int kThreads = 128;

struct RopeArgs {
  const int32_t* positions = nullptr;
  const float* cos_sin = nullptr;  // [max_pos, hd]
  int64_t max_pos = 0;
};

struct StoreArgs {
  const int64_t* slots = nullptr;
  int64_t num_slots = 0;  // num_blocks * block_size
};

// q [n, nh*hd] and k [n, nkv*hd] (rotated in place when ROTATE);
// v [n, nkv*hd]; caches [num_slots, nkv*hd] (written when STORE).
template <typename T, int VEC, bool ROTATE, bool STORE>
__global__ void RopeKvKernel(T* __restrict__ q, T* __restrict__ k, const T* __restrict__ v,
                             T* __restrict__ k_cache, T* __restrict__ v_cache, int nh, int nkv,
                             int hd, RopeArgs rope, StoreArgs store) {
  const int64_t i = blockIdx.x;
  const int64_t row = static_cast<int64_t>(nkv) * hd;
  int64_t slot = -1;
  if (STORE) {
    slot = store.slots[i];
    if (slot >= store.num_slots) slot = -1;  // bad slots are skipped like -1
  }
  T* kc = (STORE && slot >= 0) ? k_cache + slot * row : nullptr;
  T* vc = (STORE && slot >= 0) ? v_cache + slot * row : nullptr;

  if (ROTATE) {
    const int half = hd / 2;
    const int vph = half / VEC;  // vectors per half head
    const int32_t pos = rope.positions[i];
    const bool ok = pos >= 0 && pos < rope.max_pos;
    const float* cs = rope.cos_sin + static_cast<int64_t>(ok ? pos : 0) * hd;
    const int items = (nh + nkv) * vph;
    for (int item = threadIdx.x; item < items; item += blockDim.x) {
      const int head = item / vph;
      const int j = (item % vph) * VEC;
      const bool is_q = head < nh;
      T* x = is_q ? q + (i * nh + head) * hd : k + i * row + static_cast<int64_t>(head - nh) * hd;
      Vec<T, VEC> x1 = LoadVec<T, VEC>(x + j);
      Vec<T, VEC> x2 = LoadVec<T, VEC>(x + half + j);
      if (ok) {
#pragma unroll
        for (int e = 0; e < VEC; ++e) {
          const float c = cs[j + e], s = cs[half + j + e];
          const float a = ToFloat(x1.v[e]), b = ToFloat(x2.v[e]);
          x1.v[e] = FromFloat<T>(a * c - b * s);
          x2.v[e] = FromFloat<T>(b * c + a * s);
        }
        StoreVec<T, VEC>(x + j, x1);
        StoreVec<T, VEC>(x + half + j, x2);
      }
      if (!is_q && kc != nullptr) {
        T* dst = kc + static_cast<int64_t>(head - nh) * hd;
        StoreVec<T, VEC>(dst + j, x1);
        StoreVec<T, VEC>(dst + half + j, x2);
      }
    }
  }
  if (STORE && slot >= 0) {
    const int vecs = static_cast<int>(row / VEC);
    const T* vr = v + i * row;
    for (int e = threadIdx.x; e < vecs; e += blockDim.x) {
      StoreVec<T, VEC>(vc + e * VEC, LoadVec<T, VEC>(vr + e * VEC));
    }
    if (!ROTATE) {
      const T* kr = k + i * row;
      for (int e = threadIdx.x; e < vecs; e += blockDim.x) {
        StoreVec<T, VEC>(kc + e * VEC, LoadVec<T, VEC>(kr + e * VEC));
      }
    }
  }
}

template <typename T, int VEC, bool ROTATE, bool STORE>
absl::Status Launch(int64_t n, T* q, T* k, const T* v, T* kc, T* vc, int nh, int nkv, int hd,
                    RopeArgs rope, StoreArgs store) {
  RopeKvKernel<T, VEC, ROTATE, STORE>
      <<<n, kThreads, 0, Stream()>>>(q, k, v, kc, vc, nh, nkv, hd, rope, store);
  CUDA_RETURN_IF_LAUNCH_ERROR("RopeKvKernel");
  return absl::OkStatus();
}

// Runs the kernel for the given parts; q/positions/cos_sin may be undefined
// when !rotate, v/slots/caches when !store.
absl::Status Run(bool rotate, bool store, const Tensor* positions, Tensor* q, Tensor& k,
                 const Tensor* v, int head_dim, const Tensor* cos_sin, const Tensor* slot_mapping,
                 Tensor* k_cache, Tensor* v_cache) {
  const int64_t n = k.dim(0);
  if (n == 0) return absl::OkStatus();
  const int hd = head_dim;
  const int nkv = static_cast<int>(k.dim(1) / hd);
  const int nh = rotate ? static_cast<int>(q->dim(1) / hd) : 0;
  RopeArgs rope;
  if (rotate) {
    if (cos_sin->dtype() != DType::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat("ApplyRope: on cuda cos_sin must be float32, got ",
                       DTypeName(cos_sin->dtype()), " (upload ops::BuildRopeCache's table)"));
    }
    rope.positions = positions->data_as<const int32_t>();
    rope.cos_sin = cos_sin->data_as<const float>();
    rope.max_pos = cos_sin->dim(0);
  }
  StoreArgs st;
  if (store) {
    st.slots = slot_mapping->data_as<const int64_t>();
    st.num_slots = k_cache->dim(0) * k_cache->dim(1);
  }
  return DispatchFloat(k.dtype(), rotate ? "ApplyRope" : "KvStore", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T* qp = rotate ? q->data_as<T>() : nullptr;
    T* kp = k.data_as<T>();
    const T* vp = store ? v->data_as<const T>() : nullptr;
    T* kcp = store ? k_cache->data_as<T>() : nullptr;
    T* vcp = store ? v_cache->data_as<T>() : nullptr;
    constexpr int V = kVec16<T>;
    bool vec = (rotate ? (hd / 2) % V == 0 : hd % V == 0);
    for (const void* p :
         {static_cast<const void*>(qp), static_cast<const void*>(kp), static_cast<const void*>(vp),
          static_cast<const void*>(kcp), static_cast<const void*>(vcp)}) {
      vec = vec && Aligned(p, 16);
    }
    if (rotate && store) {
      return vec ? Launch<T, V, true, true>(n, qp, kp, vp, kcp, vcp, nh, nkv, hd, rope, st)
                 : Launch<T, 1, true, true>(n, qp, kp, vp, kcp, vcp, nh, nkv, hd, rope, st);
    }
    if (rotate) {
      return vec ? Launch<T, V, true, false>(n, qp, kp, vp, kcp, vcp, nh, nkv, hd, rope, st)
                 : Launch<T, 1, true, false>(n, qp, kp, vp, kcp, vcp, nh, nkv, hd, rope, st);
    }
    return vec ? Launch<T, V, false, true>(n, qp, kp, vp, kcp, vcp, nh, nkv, hd, rope, st)
               : Launch<T, 1, false, true>(n, qp, kp, vp, kcp, vcp, nh, nkv, hd, rope, st);
  });
}

}  // namespace

absl::Status ApplyRope(const Tensor& positions, Tensor& q, Tensor& k, int head_dim,
                       const Tensor& cos_sin) {
  return Run(/*rotate=*/true, /*store=*/false, &positions, &q, k, nullptr, head_dim, &cos_sin,
             nullptr, nullptr, nullptr);
}

absl::Status KvStore(const Tensor& k, const Tensor& v, const Tensor& slot_mapping, Tensor& k_cache,
                     Tensor& v_cache) {
  Tensor k_handle = k;  // not written: !rotate
  return Run(/*rotate=*/false, /*store=*/true, nullptr, nullptr, k_handle, &v,
             static_cast<int>(k_cache.dim(3)), nullptr, &slot_mapping, &k_cache, &v_cache);
}

absl::Status RopeAndKvStore(const Tensor& positions, Tensor& q, Tensor& k, const Tensor& v,
                            int head_dim, const Tensor& cos_sin, const Tensor& slot_mapping,
                            Tensor& k_cache, Tensor& v_cache) {
  return Run(/*rotate=*/true, /*store=*/true, &positions, &q, k, &v, head_dim, &cos_sin,
             &slot_mapping, &k_cache, &v_cache);
}

}  // namespace tessera::ops::cuda
