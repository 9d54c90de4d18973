#include "kernels/cpu/linear_invariant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__FMA__)
#include <immintrin.h>
#endif

#include "kernels/cpu/ops_cpu.h"

namespace tessera::ops::cpu {
namespace {

typedef float V8 __attribute__((vector_size(32)));

inline V8 Load(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// a * b + c rounded once per lane: the same result with the FMA instruction
// and without it.
inline V8 Fma(V8 a, V8 b, V8 c) {
#if defined(__FMA__)
  return reinterpret_cast<V8>(_mm256_fmadd_ps(
      reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b), reinterpret_cast<__m256>(c)));
#else
  V8 r;
  for (int l = 0; l < 8; ++l) r[l] = std::fma(a[l], b[l], c[l]);
  return r;
#endif
}

// The accumulator's lanes, then the tail, in the one fixed order.
inline float Finish(V8 acc, const float* x, const float* w, int64_t k8, int64_t k) {
  float s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
  for (int64_t t = k8; t < k; ++t) s = std::fma(x[t], w[t], s);
  return s;
}

// Rows [i0, i0 + R) x weight rows [j0, j0 + C): R * C independent
// accumulators sharing the loads. Every (i, j) runs the same chain of fmas as
// with any other R, C.
template <int R, int C>
void Block(const float* x, const float* w, int64_t k, int64_t m, int64_t i0, int64_t j0,
           float* out) {
  const int64_t k8 = k - k % 8;
  V8 acc[R][C] = {};
  for (int64_t kk = 0; kk < k8; kk += 8) {
    V8 xv[R];
    for (int r = 0; r < R; ++r) xv[r] = Load(x + (i0 + r) * k + kk);
    for (int c = 0; c < C; ++c) {
      const V8 wv = Load(w + (j0 + c) * k + kk);
      for (int r = 0; r < R; ++r) acc[r][c] = Fma(xv[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      out[(i0 + r) * m + j0 + c] = Finish(acc[r][c], x + (i0 + r) * k, w + (j0 + c) * k, k8, k);
    }
  }
}

// One block of up to 4 weight rows for every row of x.
template <int C>
void Columns(const float* x, const float* w, int64_t n, int64_t k, int64_t m, int64_t j0,
             float* out) {
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) Block<2, C>(x, w, k, m, i, j0, out);
  if (i < n) Block<1, C>(x, w, k, m, i, j0, out);
}

}  // namespace

void LinearBatchInvariant(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), k = x.dim(1), m = w.dim(0);
  if (n == 0 || m == 0) return;
  const auto* xp = x.data_as<const float>();
  const auto* wp = w.data_as<const float>();
  auto* o = out.data_as<float>();
  // Weight rows in blocks of 4 (the last may be shorter), spread over the
  // threads; each output element is computed by exactly one of them.
  const int64_t blocks = (m + 3) / 4;
#pragma omp parallel for num_threads(NumThreads()) if (n * m * k >= kMinParallelWork) \
    schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * 4;
    switch (std::min<int64_t>(4, m - j0)) {
      case 4:
        Columns<4>(xp, wp, n, k, m, j0, o);
        break;
      case 3:
        Columns<3>(xp, wp, n, k, m, j0, o);
        break;
      case 2:
        Columns<2>(xp, wp, n, k, m, j0, o);
        break;
      default:
        Columns<1>(xp, wp, n, k, m, j0, o);
        break;
    }
  }
  if (bias != nullptr) {
    const auto* b = bias->data_as<const float>();
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < m; ++j) o[i * m + j] += b[j];
    }
  }
}

}  // namespace tessera::ops::cpu
