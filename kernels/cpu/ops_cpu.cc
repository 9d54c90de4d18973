// CPU implementations of the elementwise, normalisation, GEMM, rotary,
// KV-store and gather ops (attention is in attention_cpu.cc).
#include "kernels/cpu/ops_cpu.h"

#include <cblas.h>
#include <omp.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <numbers>
#include <thread>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/linear_invariant.h"

namespace tessera::ops::cpu {
namespace {

std::atomic<int> g_threads{0};  // 0: not set, use OpenMP's default
std::atomic<bool> g_batch_invariant{false};

// Sum of squares of a row, float32 accumulation in SIMD lanes.
float SumSquares(const float* x, int64_t h) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int64_t j = 0; j < h; ++j) acc += x[j] * x[j];
  return acc;
}

// out = x * rsqrt(mean(x^2) + eps) * w for one row (out may be x).
void NormRow(const float* x, const float* w, float eps, int64_t h, float* out) {
  const float inv = 1.f / std::sqrt(SumSquares(x, h) / static_cast<float>(h) + eps);
#pragma omp simd
  for (int64_t j = 0; j < h; ++j) out[j] = x[j] * inv * w[j];
}

}  // namespace

void SetThreads(int n) {
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  g_threads.store(n, std::memory_order_relaxed);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

void SetBatchInvariant(bool on) { g_batch_invariant.store(on, std::memory_order_relaxed); }

int NumThreads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}

void Embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out) {
  const int64_t n = ids.dim(0), rows = table.dim(0), h = table.dim(1);
  const auto* id = ids.data_as<const int32_t>();
  const auto* tab = table.data_as<const float>();
  auto* o = out.data_as<float>();
#pragma omp parallel for num_threads(NumThreads()) if (n * h >= kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t local = static_cast<int64_t>(id[i]) - vocab_start;
    if (local >= 0 && local < rows) {
      std::memcpy(o + i * h, tab + local * h, h * sizeof(float));
    } else {
      std::memset(o + i * h, 0, h * sizeof(float));
    }
  }
}

void RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  const int64_t rows = x.dim(0), h = x.dim(1);
  const auto* xp = x.data_as<const float>();
  const auto* w = weight.data_as<const float>();
  auto* o = out.data_as<float>();
#pragma omp parallel for num_threads(NumThreads()) if (rows * h >= kMinParallelWork)
  for (int64_t r = 0; r < rows; ++r) NormRow(xp + r * h, w, eps, h, o + r * h);
}

void FusedAddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps) {
  const int64_t rows = x.dim(0), h = x.dim(1);
  auto* xp = x.data_as<float>();
  auto* res = residual.data_as<float>();
  const auto* w = weight.data_as<const float>();
#pragma omp parallel for num_threads(NumThreads()) if (rows * h >= kMinParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = xp + r * h;
    float* rr = res + r * h;
#pragma omp simd
    for (int64_t j = 0; j < h; ++j) rr[j] += xr[j];
    NormRow(rr, w, eps, h, xr);
  }
}

void Linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), k = x.dim(1), m = w.dim(0);
  if (n == 0 || m == 0) return;
  if (g_batch_invariant.load(std::memory_order_relaxed)) {
    LinearBatchInvariant(x, w, bias, out);
    return;
  }
  auto* o = out.data_as<float>();
  if (k == 0) {  // empty sum: out = bias or 0 (BLAS wants lda >= 1)
    for (int64_t i = 0; i < n; ++i) {
      if (bias != nullptr) {
        std::memcpy(o + i * m, bias->data_as<const float>(), m * sizeof(float));
      } else {
        std::memset(o + i * m, 0, m * sizeof(float));
      }
    }
    return;
  }
  float beta = 0.f;
  if (bias != nullptr) {
    // Seed every output row with the bias and let the GEMM accumulate onto it.
    const auto* b = bias->data_as<const float>();
    for (int64_t i = 0; i < n; ++i) std::memcpy(o + i * m, b, m * sizeof(float));
    beta = 1.f;
  }
  // OpenBLAS itself runs products under ~2.6e5 multiply-adds on one thread.
  if (n == 1) {
    // One token (decode): a matrix-vector product, out = w x (+ b). Some
    // OpenBLAS versions scale y by beta = 0 instead of clearing it, which would
    // keep NaNs from uninitialised memory: clear it here.
    if (bias == nullptr) std::memset(o, 0, m * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(m), static_cast<int>(k), 1.f,
                w.data_as<const float>(), static_cast<int>(k), x.data_as<const float>(), 1, beta, o,
                1);
    return;
  }
  // The same product computed as out^T = w @ x^T in column-major terms, so the
  // large operand (the weight) is OpenBLAS's M side, packed once per call,
  // and the few activation rows are the N side. Row-major out [n, m] is
  // column-major [m, n]: no transpose of the result is needed.
  cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.f, w.data_as<const float>(), static_cast<int>(k),
              x.data_as<const float>(), static_cast<int>(k), beta, o, static_cast<int>(m));
}

void SiluAndMul(const Tensor& x, Tensor& out) {
  const int64_t n = out.dim(0), inter = out.dim(1);
  const auto* xp = x.data_as<const float>();
  auto* o = out.data_as<float>();
#pragma omp parallel for num_threads(NumThreads()) if (n * inter >= kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const float* gate = xp + i * 2 * inter;
    const float* up = gate + inter;
    float* orow = o + i * inter;
    for (int64_t j = 0; j < inter; ++j) {
      const float g = gate[j];
      orow[j] = g / (1.f + std::exp(-g)) * up[j];
    }
  }
}

std::vector<double> RopeInvFreq(int head_dim, double theta, const RopeScaling& scaling) {
  const int half = head_dim / 2;
  std::vector<double> inv(half);
  for (int j = 0; j < half; ++j) inv[j] = 1.0 / std::pow(theta, 2.0 * j / head_dim);
  switch (scaling.type) {
    case RopeScaling::Type::kNone:
      break;
    case RopeScaling::Type::kLinear:
      for (double& f : inv) f /= scaling.factor;
      break;
    case RopeScaling::Type::kLlama3: {
      // transformers' _compute_llama3_parameters.
      const double old_len = static_cast<double>(scaling.original_max_position_embeddings);
      const double low_freq_wavelen = old_len / scaling.low_freq_factor;
      const double high_freq_wavelen = old_len / scaling.high_freq_factor;
      for (double& f : inv) {
        const double wavelen = 2.0 * std::numbers::pi / f;
        if (wavelen < high_freq_wavelen) continue;  // high frequency: unchanged
        if (wavelen > low_freq_wavelen) {           // low frequency: scaled
          f /= scaling.factor;
          continue;
        }
        const double smooth = (old_len / wavelen - scaling.low_freq_factor) /
                              (scaling.high_freq_factor - scaling.low_freq_factor);
        f = (1.0 - smooth) * f / scaling.factor + smooth * f;
      }
      break;
    }
  }
  return inv;
}

Tensor BuildRopeCache(int head_dim, int64_t max_positions, double theta,
                      const RopeScaling& scaling) {
  if (head_dim <= 0 || head_dim % 2 != 0 || max_positions < 0) return Tensor();
  const int half = head_dim / 2;
  const std::vector<double> inv = RopeInvFreq(head_dim, theta, scaling);
  Tensor cache = Tensor::Empty(DType::kFloat32, {max_positions, head_dim});
  auto* c = cache.data_as<float>();
#pragma omp parallel for num_threads(NumThreads()) if (max_positions * half >= kMinParallelWork)
  for (int64_t p = 0; p < max_positions; ++p) {
    float* row = c + p * head_dim;
    for (int j = 0; j < half; ++j) {
      const double angle = static_cast<double>(p) * inv[j];
      row[j] = static_cast<float>(std::cos(angle));
      row[half + j] = static_cast<float>(std::sin(angle));
    }
  }
  return cache;
}

absl::Status ApplyRope(const Tensor& positions, Tensor& q, Tensor& k, int head_dim,
                       const Tensor& cos_sin) {
  const int64_t n = positions.dim(0), max_pos = cos_sin.dim(0);
  const auto* pos = positions.data_as<const int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (pos[i] < 0 || pos[i] >= max_pos) {
      return absl::InvalidArgumentError(absl::StrCat("ApplyRope: positions[", i, "] = ", pos[i],
                                                     " is outside the rope cache [0, ", max_pos,
                                                     ")"));
    }
  }
  const int half = head_dim / 2;
  const int64_t qh = q.dim(1) / head_dim, kh = k.dim(1) / head_dim;
  auto* qp = q.data_as<float>();
  auto* kp = k.data_as<float>();
  const auto* table = cos_sin.data_as<const float>();
  const auto rotate = [half](float* x, const float* cs) {
    const float* cosv = cs;
    const float* sinv = cs + half;
#pragma omp simd
    for (int j = 0; j < half; ++j) {
      const float x1 = x[j], x2 = x[half + j];
      x[j] = x1 * cosv[j] - x2 * sinv[j];
      x[half + j] = x2 * cosv[j] + x1 * sinv[j];
    }
  };
#pragma omp parallel for num_threads(NumThreads()) if (n * (qh + kh) * head_dim >= kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const float* cs = table + static_cast<int64_t>(pos[i]) * head_dim;
    for (int64_t h = 0; h < qh; ++h) rotate(qp + (i * qh + h) * head_dim, cs);
    for (int64_t h = 0; h < kh; ++h) rotate(kp + (i * kh + h) * head_dim, cs);
  }
  return absl::OkStatus();
}

absl::Status KvStore(const Tensor& k, const Tensor& v, const Tensor& slot_mapping, Tensor& k_cache,
                     Tensor& v_cache) {
  const int64_t n = slot_mapping.dim(0);
  const int64_t num_slots = k_cache.dim(0) * k_cache.dim(1);
  const int64_t row = k_cache.dim(2) * k_cache.dim(3);  // nkv * hd
  const auto* slots = slot_mapping.data_as<const int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (slots[i] < -1 || slots[i] >= num_slots) {
      return absl::InvalidArgumentError(absl::StrCat("KvStore: slot_mapping[", i, "] = ", slots[i],
                                                     " is outside [-1, ", num_slots, ")"));
    }
  }
  const auto* kp = k.data_as<const float>();
  const auto* vp = v.data_as<const float>();
  auto* kc = k_cache.data_as<float>();
  auto* vc = v_cache.data_as<float>();
#pragma omp parallel for num_threads(NumThreads()) if (n * row >= kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    if (slots[i] < 0) continue;  // padding token
    std::memcpy(kc + slots[i] * row, kp + i * row, row * sizeof(float));
    std::memcpy(vc + slots[i] * row, vp + i * row, row * sizeof(float));
  }
  return absl::OkStatus();
}

absl::Status GatherRows(const Tensor& x, const Tensor& indices, Tensor& out) {
  const int64_t n = x.dim(0), h = x.dim(1), m = indices.dim(0);
  const auto* idx = indices.data_as<const int32_t>();
  for (int64_t j = 0; j < m; ++j) {
    if (idx[j] < 0 || idx[j] >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat("GatherRows: indices[", j, "] = ", idx[j], " is outside [0, ", n, ")"));
    }
  }
  const auto* xp = x.data_as<const float>();
  auto* o = out.data_as<float>();
#pragma omp parallel for num_threads(NumThreads()) if (m * h >= kMinParallelWork)
  for (int64_t j = 0; j < m; ++j) {
    std::memcpy(o + j * h, xp + static_cast<int64_t>(idx[j]) * h, h * sizeof(float));
  }
  return absl::OkStatus();
}

}  // namespace tessera::ops::cpu
