#include "worker/device/cuda_graph.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/tensor.h"

#if TESSERA_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_check.h"
#endif

namespace tessera {

std::vector<int> DecodeGraphBuckets(int max_batch) {
  std::vector<int> buckets;
  for (int b = 1; b <= max_batch;) {
    buckets.push_back(b);
    if (b < 8) {
      b *= 2;
    } else if (b < 64) {
      b += 8;
    } else if (b < 128) {
      b += 16;
    } else {
      b += 32;
    }
  }
  if (max_batch >= 1 && buckets.back() != max_batch) buckets.push_back(max_batch);
  return buckets;
}

std::vector<int> DecodeContextBuckets(int max_blocks, int min_blocks) {
  std::vector<int> buckets;
  if (max_blocks < 1) return buckets;
  for (int64_t b = std::clamp(min_blocks, 1, max_blocks); b < max_blocks; b *= 2) {
    buckets.push_back(static_cast<int>(b));
  }
  buckets.push_back(max_blocks);
  return buckets;
}

int BucketFor(const std::vector<int>& buckets, int batch) {
  auto it = std::lower_bound(buckets.begin(), buckets.end(), batch);
  return it == buckets.end() ? -1 : *it;
}

#if TESSERA_HAVE_CUDA

absl::StatusOr<std::unique_ptr<CudaGraph>> CudaGraph::Capture(
    const std::function<absl::Status()>& body) {
  auto stream = static_cast<cudaStream_t>(CurrentCudaStream());
  if (stream == nullptr) {
    return absl::FailedPreconditionError(
        "CudaGraph::Capture: the current stream is the legacy default stream, which cannot be "
        "captured; make a non-default stream current (ScopedCudaStream)");
  }
  // Thread-local mode: other threads (e.g. a gRPC thread freeing a tensor)
  // may still make unsafe CUDA calls while this one captures.
  CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  absl::Status body_status = body();
  cudaGraph_t graph = nullptr;
  // Always end the capture, so the stream works eagerly again.
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  if (!body_status.ok()) {
    // The caller stays eager: the failed capture's errors (the body's calls
    // fail with cudaErrorStreamCapture*, and so may the end) are handled
    // here, so none may be left for the next eager launch's check.
    if (graph != nullptr) (void)cuda::ConsumeCudaError(cudaGraphDestroy(graph), "cudaGraphDestroy");
    (void)cuda::ConsumeCudaError(end, "cudaStreamEndCapture");
    (void)cuda::ConsumeLastError();  // whatever the body's failed calls left
    return absl::Status(body_status.code(),
                        absl::StrCat("while capturing a CUDA graph: ", body_status.message()));
  }
  CUDA_RETURN_IF_ERROR(end);

  std::unique_ptr<CudaGraph> g(new CudaGraph());
  g->graph_ = graph;  // ~CudaGraph destroys it if a later step fails
  size_t nodes = 0;
  CUDA_RETURN_IF_ERROR(cudaGraphGetNodes(graph, nullptr, &nodes));
  g->num_nodes_ = static_cast<int>(nodes);
  cudaGraphExec_t exec = nullptr;
  CUDA_RETURN_IF_ERROR(cudaGraphInstantiate(&exec, graph, 0));
  g->exec_ = exec;
  return g;
}

CudaGraph::~CudaGraph() {
  // A failure here is only logged by nobody: consume it so it cannot surface
  // as the next launch's error.
  if (exec_ != nullptr) {
    (void)cuda::ConsumeCudaError(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_)),
                                 "cudaGraphExecDestroy");
  }
  if (graph_ != nullptr) {
    (void)cuda::ConsumeCudaError(cudaGraphDestroy(static_cast<cudaGraph_t>(graph_)),
                                 "cudaGraphDestroy");
  }
}

absl::Status CudaGraph::Replay() {
  CUDA_RETURN_IF_ERROR(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_),
                                       static_cast<cudaStream_t>(CurrentCudaStream())));
  return absl::OkStatus();
}

#else  // !TESSERA_HAVE_CUDA

absl::StatusOr<std::unique_ptr<CudaGraph>> CudaGraph::Capture(
    const std::function<absl::Status()>& /*body*/) {
  return absl::FailedPreconditionError("CUDA graphs need the CUDA path, which is not built");
}
CudaGraph::~CudaGraph() = default;
absl::Status CudaGraph::Replay() {
  return absl::FailedPreconditionError("CUDA graphs need the CUDA path, which is not built");
}

#endif  // TESSERA_HAVE_CUDA

}  // namespace tessera
