#include "bench/gpu/gpu_roofs.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "common/status_macros.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/tensor.h"
#include "worker/device/cuda_device.h"

namespace tessera::gpu_bench {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

absl::StatusOr<double> CopyBandwidth() {
  const int64_t bytes = int64_t{2} << 30;
  ASSIGN_OR_RETURN(Tensor a, Tensor::TryEmpty(DType::kInt32, {bytes / 4}, Device::kCuda));
  ASSIGN_OR_RETURN(Tensor b, Tensor::TryEmpty(DType::kInt32, {bytes / 4}, Device::kCuda));
  cudaEvent_t start, stop;
  CUDA_RETURN_IF_ERROR(cudaEventCreate(&start));
  CUDA_RETURN_IF_ERROR(cudaEventCreate(&stop));
  std::vector<double> rates;
  for (int i = 0; i < 8; ++i) {
    CUDA_RETURN_IF_ERROR(cudaEventRecord(start));
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
    CUDA_RETURN_IF_ERROR(cudaEventRecord(stop));
    CUDA_RETURN_IF_ERROR(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start, stop));
    if (i >= 2) rates.push_back(2.0 * bytes / (ms * 1e-3));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return Median(rates);
}

absl::StatusOr<double> GemmRate(int n) {
  ASSIGN_OR_RETURN(Tensor a, Tensor::TryEmpty(DType::kBFloat16, {n, n}, Device::kCuda));
  ASSIGN_OR_RETURN(Tensor b, Tensor::TryEmpty(DType::kBFloat16, {n, n}, Device::kCuda));
  ASSIGN_OR_RETURN(Tensor c, Tensor::TryEmpty(DType::kBFloat16, {n, n}, Device::kCuda));
  RETURN_IF_ERROR(ZeroAsync(a));
  RETURN_IF_ERROR(ZeroAsync(b));
  const size_t workspace_bytes = size_t{64} << 20;
  ASSIGN_OR_RETURN(
      Tensor workspace,
      Tensor::TryEmpty(DType::kInt32, {static_cast<int64_t>(workspace_bytes / 4)}, Device::kCuda));
  cublasLtHandle_t lt = nullptr;
  CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&lt));
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  auto cleanup = [&] {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (op) cublasLtMatmulDescDestroy(op);
    cublasLtDestroy(lt);
  };
  absl::StatusOr<double> result = [&]() -> absl::StatusOr<double> {
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, n, n, n));
    CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, n, n, n));
    CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, n, n, n));
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes, sizeof(workspace_bytes)));
    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    CUBLAS_RETURN_IF_ERROR(
        cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &heuristic, &found));
    if (found == 0) return absl::InternalError("cuBLASLt found no bf16 GEMM algorithm");
    const float alpha = 1.0f, beta = 0.0f;
    cudaEvent_t start, stop;
    CUDA_RETURN_IF_ERROR(cudaEventCreate(&start));
    CUDA_RETURN_IF_ERROR(cudaEventCreate(&stop));
    std::vector<double> rates;
    for (int i = 0; i < 10; ++i) {
      CUDA_RETURN_IF_ERROR(cudaEventRecord(start));
      CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(lt, op, &alpha, a.data(), la, b.data(), lb, &beta,
                                            c.data(), lc, c.data(), lc, &heuristic.algo,
                                            workspace.data(), workspace_bytes, nullptr));
      CUDA_RETURN_IF_ERROR(cudaEventRecord(stop));
      CUDA_RETURN_IF_ERROR(cudaEventSynchronize(stop));
      float ms = 0;
      CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start, stop));
      if (i >= 3) rates.push_back(2.0 * n * n * static_cast<double>(n) / (ms * 1e-3));
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return Median(rates);
  }();
  cleanup();
  return result;
}

}  // namespace tessera::gpu_bench
