// Linear on CUDA: out = x @ w^T (+ bias) with cuBLASLt. Host code only.
//
// The output is x's dtype or float32 (half-precision inputs writing float32
// logits: cuBLASLt's A/B 16F or 16BF with C/D 32F, compute 32F).
//
// Row-major out [n, m] is column-major [m, n], so the product is computed as
// the column-major D[m, n] = op(A)[m, k] * B[k, n] with A = w (column-major
// [k, m], transposed) and B = x (column-major [k, n]); the bias is cuBLASLt's
// BIAS epilogue (one value per row of D, i.e. per output feature).
//
// Caches, each behind one mutex (never held across a GPU call that waits):
//  - one cublasLt handle per device (created on first use, kept for the
//    process: destroying it at exit can run after the driver shut down);
//  - one workspace per (device, stream), kWorkspaceBytes, allocated on first
//    use (so warm up before capturing a CUDA graph);
//  - the heuristic's algorithm per (device, dtype, n, m, k, bias, pointer
//    alignments): the heuristic costs tens of microseconds, the matmul
//    descriptors a microsecond, so descriptors are made per call (which also
//    keeps the bias pointer out of shared state).
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops_cuda.h"

namespace tessera::ops::cuda {
namespace {

cudaStream_t Stream() { return static_cast<cudaStream_t>(CurrentCudaStream()); }

// 32 MiB: what NVIDIA recommends for Hopper (4 MiB would do on Ampere).
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

struct Workspace {
  void* ptr = nullptr;
  size_t bytes = 0;
};

// (device, input dtype, output dtype, n, m, k, bias, alignments of w, x, out, bias)
using AlgoKey = std::tuple<int, int, int, int64_t, int64_t, int64_t, bool, uint32_t, uint32_t,
                           uint32_t, uint32_t>;

class LtCache {
 public:
  static LtCache& Get() {
    static LtCache* cache = new LtCache();  // never destroyed (see above)
    return *cache;
  }

  absl::StatusOr<cublasLtHandle_t> Handle(int device) {
    absl::MutexLock lock(&mu_);
    auto it = handles_.find(device);
    if (it != handles_.end()) return it->second;
    cublasLtHandle_t h = nullptr;
    CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&h));
    handles_.emplace(device, h);
    return h;
  }

  absl::StatusOr<Workspace> WorkspaceFor(int device, cudaStream_t stream) {
    absl::MutexLock lock(&mu_);
    auto key = std::make_pair(device, reinterpret_cast<uintptr_t>(stream));
    auto it = workspaces_.find(key);
    if (it != workspaces_.end()) return it->second;
    Workspace ws;
    CUDA_RETURN_IF_ERROR(cudaMalloc(&ws.ptr, kWorkspaceBytes));
    ws.bytes = kWorkspaceBytes;
    workspaces_.emplace(key, ws);
    return ws;
  }

  bool FindAlgo(const AlgoKey& key, cublasLtMatmulAlgo_t* algo) {
    absl::MutexLock lock(&mu_);
    auto it = algos_.find(key);
    if (it == algos_.end()) return false;
    *algo = it->second;
    return true;
  }

  void PutAlgo(const AlgoKey& key, const cublasLtMatmulAlgo_t& algo) {
    absl::MutexLock lock(&mu_);
    algos_.emplace(key, algo);
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<int, cublasLtHandle_t> handles_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::pair<int, uintptr_t>, Workspace> workspaces_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<AlgoKey, cublasLtMatmulAlgo_t> algos_ ABSL_GUARDED_BY(mu_);
};

// RAII owners of the cuBLASLt descriptors.
struct DescDeleter {
  void operator()(cublasLtMatmulDescOpaque_t* d) const { cublasLtMatmulDescDestroy(d); }
  void operator()(cublasLtMatrixLayoutOpaque_t* l) const { cublasLtMatrixLayoutDestroy(l); }
  void operator()(cublasLtMatmulPreferenceOpaque_t* p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using MatmulDesc = std::unique_ptr<cublasLtMatmulDescOpaque_t, DescDeleter>;
using Layout = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, DescDeleter>;
using Preference = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, DescDeleter>;

cudaDataType_t CudaType(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return CUDA_R_16F;
    case DType::kBFloat16:
      return CUDA_R_16BF;
    case DType::kFloat32:
    case DType::kInt32:
    case DType::kInt64:
      break;
  }
  return CUDA_R_32F;
}

// Largest power of two (<= 256) dividing the address: the alignment cuBLASLt
// may assume for that operand.
uint32_t AlignmentOf(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && a % align != 0) align /= 2;
  return align;
}

absl::StatusOr<Layout> MakeLayout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld) {
  cublasLtMatrixLayout_t l = nullptr;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(rows),
                                                    static_cast<uint64_t>(cols), ld));
  return Layout(l);
}

// out = bias (each row) or 0, for k == 0 (cuBLASLt wants k >= 1).
absl::Status FillEmptyProduct(const Tensor* bias, Tensor& out, cudaStream_t stream) {
  const int64_t n = out.dim(0);
  const size_t row_bytes = out.nbytes() / static_cast<size_t>(n);
  if (bias == nullptr) {
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(out.data(), 0, out.nbytes(), stream));
    return absl::OkStatus();
  }
  for (int64_t i = 0; i < n; ++i) {
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(static_cast<char*>(out.data()) + i * row_bytes,
                                         bias->data(), row_bytes, cudaMemcpyDeviceToDevice,
                                         stream));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), k = x.dim(1), m = w.dim(0);
  if (n == 0 || m == 0) return absl::OkStatus();
  const cudaStream_t stream = Stream();
  if (k == 0) return FillEmptyProduct(bias, out, stream);

  int device = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  LtCache& cache = LtCache::Get();
  ASSIGN_OR_RETURN(cublasLtHandle_t handle, cache.Handle(device));
  ASSIGN_OR_RETURN(Workspace ws, cache.WorkspaceFor(device, stream));

  const cudaDataType_t type = CudaType(x.dtype());
  const cudaDataType_t out_type = CudaType(out.dtype());  // x's, or float32 (ops.h)
  cublasLtMatmulDesc_t raw_desc = nullptr;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&raw_desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  MatmulDesc desc(raw_desc);
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSA,
                                                        &trans_a, sizeof(trans_a)));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSB,
                                                        &trans_b, sizeof(trans_b)));
  if (bias != nullptr) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const void* bias_ptr = bias->data();
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                          &epilogue, sizeof(epilogue)));
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr, sizeof(bias_ptr)));
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        desc.get(), CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type, sizeof(type)));
  }
  ASSIGN_OR_RETURN(Layout a, MakeLayout(type, k, m, k));      // w
  ASSIGN_OR_RETURN(Layout b, MakeLayout(type, k, n, k));      // x
  ASSIGN_OR_RETURN(Layout c, MakeLayout(out_type, m, n, m));  // out

  const uint32_t align_a = AlignmentOf(w.data()), align_b = AlignmentOf(x.data());
  const uint32_t align_c = AlignmentOf(out.data());
  const uint32_t align_bias = bias != nullptr ? AlignmentOf(bias->data()) : 256;
  const AlgoKey key{device,
                    static_cast<int>(x.dtype()),
                    static_cast<int>(out.dtype()),
                    n,
                    m,
                    k,
                    bias != nullptr,
                    align_a,
                    align_b,
                    align_c,
                    align_bias};
  cublasLtMatmulAlgo_t algo;
  if (!cache.FindAlgo(key, &algo)) {
    cublasLtMatmulPreference_t raw_pref = nullptr;
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&raw_pref));
    Preference pref(raw_pref);
    const uint64_t ws_bytes = ws.bytes;
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
        pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof(ws_bytes)));
    const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c}};
    for (const auto& [attr, value] : aligns) {
      CUBLAS_RETURN_IF_ERROR(
          cublasLtMatmulPreferenceSetAttribute(pref.get(), attr, &value, sizeof(value)));
    }
    cublasLtMatmulHeuristicResult_t result = {};
    int found = 0;
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulAlgoGetHeuristic(
        handle, desc.get(), a.get(), b.get(), c.get(), c.get(), pref.get(), 1, &result, &found));
    if (found == 0) {
      return absl::UnimplementedError(
          absl::StrCat("Linear: cuBLASLt has no algorithm for ", DTypeName(x.dtype()), " x [", n,
                       ", ", k, "] @ w^T [", m, ", ", k, "]", bias != nullptr ? " + bias" : "",
                       " -> ", DTypeName(out.dtype())));
    }
    algo = result.algo;
    cache.PutAlgo(key, algo);
  }
  const float alpha = 1.f, beta = 0.f;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle, desc.get(), &alpha, w.data(), a.get(), x.data(),
                                        b.get(), &beta, out.data(), c.get(), out.data(), c.get(),
                                        &algo, ws.ptr, ws.bytes, stream));
  return absl::OkStatus();
}

}  // namespace tessera::ops::cuda
