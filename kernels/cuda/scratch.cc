#include "kernels/cuda/scratch.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/tensor.h"

namespace tessera::ops::cuda {
namespace {

struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
};

struct Cache {
  absl::Mutex mu;
  absl::flat_hash_map<std::tuple<int, int, uintptr_t>, Buffer> buffers ABSL_GUARDED_BY(mu);
};

Cache& GetCache() {
  static Cache* cache = new Cache();  // never destroyed: freeing at exit can outlive the driver
  return *cache;
}

}  // namespace

absl::StatusOr<void*> ScratchBuffer(ScratchKind kind, size_t bytes) {
  int device = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  const auto key = std::make_tuple(static_cast<int>(kind), device,
                                   reinterpret_cast<uintptr_t>(CurrentCudaStream()));
  Cache& cache = GetCache();
  absl::MutexLock lock(&cache.mu);
  Buffer& buf = cache.buffers[key];
  if (buf.bytes >= bytes && buf.ptr != nullptr) return buf.ptr;
  if (buf.ptr != nullptr) {
    CUDA_RETURN_IF_ERROR(cudaFree(buf.ptr));
    buf = Buffer{};
  }
  // Round up to 1 MiB steps so slowly growing requests do not reallocate often.
  const size_t rounded = (bytes + (size_t{1} << 20) - 1) & ~((size_t{1} << 20) - 1);
  CUDA_RETURN_IF_ERROR(cudaMalloc(&buf.ptr, rounded));
  buf.bytes = rounded;
  return buf.ptr;
}

}  // namespace tessera::ops::cuda
