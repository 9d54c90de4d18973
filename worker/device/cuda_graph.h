// CUDA graphs for decode steps: a captured, instantiated graph (CudaGraph)
// and the buckets decode graphs are captured at: batch sizes and context
// lengths (in KV blocks).
//
// A decode step's kernels launch in a few microseconds each but there are
// hundreds of them per step (a few per layer), so at small batches the CPU
// launch time rivals the GPU time. Capturing the step once per batch-size
// bucket and replaying it costs one launch. A graph replays exactly the
// kernels, pointers and launch shapes it captured: its inputs and outputs
// must sit in the same (static) buffers at every replay, and the batch is
// padded up to the bucket it was captured at, and its block tables are as
// wide as its context bucket (see CudaModelExecutor).
//
// The header needs no CUDA toolkit: in a build without the CUDA path Capture
// fails with FAILED_PRECONDITION.
// Thread-safety: a CudaGraph is used by one thread (the engine thread) at a
// time; the bucket functions are pure.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera {

class CudaGraph {
 public:
  // Runs `body` with the calling thread's current stream (a non-default
  // stream: the legacy default stream cannot be captured) in capture mode
  // and instantiates what it enqueued. Nothing runs while capturing. `body`
  // must only enqueue work: no host synchronisation, no allocation, no
  // device-to-host copy it then reads (the CUDA calls it makes fail, and so
  // does Capture, which then leaves the stream usable for eager work).
  // Collectives may be captured only when the communicator says so
  // (Communicator::SupportsGraphCapture).
  static absl::StatusOr<std::unique_ptr<CudaGraph>> Capture(
      const std::function<absl::Status()>& body);
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Enqueues the captured work on the current stream. Errors name the call.
  absl::Status Replay();

  // The number of kernel and memcpy nodes captured (for logs and tests).
  int num_nodes() const { return num_nodes_; }

 private:
  CudaGraph() = default;
  void* graph_ = nullptr;  // cudaGraph_t
  void* exec_ = nullptr;   // cudaGraphExec_t
  int num_nodes_ = 0;
};

// The batch sizes decode graphs are captured at, ascending, up to and
// including `max_batch` (when max_batch >= 1): 1, 2, 4, 8, then every 8 up to
// 64, every 16 up to 128, every 32 beyond, and max_batch itself as the last
// bucket. A batch gets fewer padding rows than the step between buckets
// around it (under 8 up to 64), which a memory-bound decode step barely
// notices, and 256 sequences need 17 graphs.
std::vector<int> DecodeGraphBuckets(int max_batch);

// The context lengths, in KV blocks, decode graphs are captured at,
// ascending: min_blocks, 2 * min_blocks, 4 * min_blocks, ... below
// max_blocks, then max_blocks itself (min_blocks is clamped to [1,
// max_blocks]; empty when max_blocks < 1). A graph's attention grid and block
// tables are sized by its context bucket, so a step pays for at most twice
// its longest context (or min_blocks) rather than for max_model_len; with
// min_blocks one
// attention partition (kDecodePartitionTokens) and max_model_len 131072 in
// blocks of 16 there are 9 buckets.
std::vector<int> DecodeContextBuckets(int max_blocks, int min_blocks);

// The smallest bucket >= batch, or -1 when batch exceeds the largest (or the
// list is empty). `buckets` ascending. Used for context buckets too.
int BucketFor(const std::vector<int>& buckets, int batch);

}  // namespace tessera
