#include "kernels/cuda/scratch.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/tensor.h"

namespace tessera::ops::cuda {
namespace {

struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  int64_t generation = 0;  // allocations so far
};

struct Cache {
  absl::Mutex mu;
  absl::flat_hash_map<std::tuple<int, int, uintptr_t>, Buffer> buffers ABSL_GUARDED_BY(mu);
};

Cache& GetCache() {
  static Cache* cache = new Cache();  // never destroyed: freeing at exit can outlive the driver
  return *cache;
}

const char* KindName(ScratchKind kind) {
  switch (kind) {
    case ScratchKind::kAttentionDecode:
      return "decode-attention partials";
  }
  return "unknown";
}

}  // namespace

absl::StatusOr<void*> ScratchBuffer(ScratchKind kind, size_t bytes) {
  int device = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  auto stream = static_cast<cudaStream_t>(CurrentCudaStream());
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUDA_RETURN_IF_ERROR(cudaStreamIsCapturing(stream, &capture));
  const auto key =
      std::make_tuple(static_cast<int>(kind), device, reinterpret_cast<uintptr_t>(stream));
  Cache& cache = GetCache();
  absl::MutexLock lock(&cache.mu);
  Buffer& buf = cache.buffers[key];
  const ScratchDecision d = DecideScratch(buf.ptr == nullptr ? 0 : buf.bytes, bytes,
                                          capture != cudaStreamCaptureStatusNone);
  switch (d.action) {
    case ScratchAction::kReuse:
      return buf.ptr;
    case ScratchAction::kRefuse:
      return absl::FailedPreconditionError(absl::StrCat(
          "ScratchBuffer: the ", KindName(kind), " scratch would grow from ", buf.bytes, " to ",
          bytes,
          " bytes while its stream captures a CUDA graph; run an eager step at this shape "
          "before capturing it"));
    case ScratchAction::kGrow:
      break;
  }
  // Whatever happens next, the old address is gone.
  void* old = buf.ptr;
  buf = Buffer{nullptr, 0, buf.generation + 1};
  if (old != nullptr) CUDA_RETURN_IF_ERROR(cudaFree(old));
  void* fresh = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMalloc(&fresh, d.bytes));
  buf.ptr = fresh;
  buf.bytes = d.bytes;
  return buf.ptr;
}

int64_t ScratchGeneration() {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    (void)::tessera::cuda::ConsumeLastError();
    return -1;  // no device: matches no capture
  }
  const auto stream = reinterpret_cast<uintptr_t>(CurrentCudaStream());
  Cache& cache = GetCache();
  absl::MutexLock lock(&cache.mu);
  int64_t sum = 0;
  for (ScratchKind kind : {ScratchKind::kAttentionDecode}) {
    auto it = cache.buffers.find(std::make_tuple(static_cast<int>(kind), device, stream));
    if (it != cache.buffers.end()) sum += it->second.generation;
  }
  return sum;
}

}  // namespace tessera::ops::cuda
