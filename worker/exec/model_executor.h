// Runs step plans through this rank's model shard and KV cache, and samples
// the next tokens from the logits (rank 0). One per rank; used by the
// leader's engine and by the follower loop (worker/exec/replica_protocol.h)
// alike. Not thread-safe: owned by the rank's engine thread (which need not
// be the thread that built it).
//
// One interface, two implementations chosen by the model's device (Create):
//   CpuModelExecutor  (worker/exec/cpu_executor.h): the plan's arrays viewed
//                     in place, host float32 logits, the worker's Sampler.
//   CudaModelExecutor (worker/exec/cuda_executor.h): input packing into
//                     pinned memory and one upload per step, the executor's
//                     own stream, decode CUDA graphs, GPU sampling.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tessera/v1/step_plan.pb.h"
#include "worker/exec/sampler.h"
#include "worker/model/kv_cache.h"
#include "worker/model/llama.h"

namespace tessera {

struct ExecutorOptions {
  // Buffers are sized for steps of this many tokens and sequences (larger
  // plans grow them, which drops the captured graphs).
  int max_num_batched_tokens = 2048;
  int max_num_seqs = 256;
  // Tokens per KV block; 0 = the cache's (required when the executor is
  // created before its cache, see SetCache).
  int block_size = 0;
  // The longest sequence: the widest decode graph's block table and
  // attention (narrower graphs are captured per context bucket, see
  // worker/exec/cuda_staging.h). 0 = the model's max_position_embeddings.
  int max_model_len = 0;
  // CUDA graphs for decode steps (CUDA only; needs a communicator that
  // supports capture).
  bool cuda_graphs = true;
  // The largest decode batch replayed from a graph; 0 = max_num_seqs (at most
  // 256 either way: larger decode batches are compute-bound enough to gain
  // little).
  int max_graph_batch = 0;
  // At most this many decode graphs (batch bucket x context bucket) are kept;
  // the least recently replayed one makes room for a new shape.
  int max_decode_graphs = 64;
};

struct ExecutorStats {
  int64_t graph_steps = 0;  // decode steps replayed from a CUDA graph
  int64_t eager_steps = 0;  // steps run op by op
  int64_t graphs_captured = 0;
};

class ModelExecutor {
 public:
  // The executor for the model's device: CPU, or CUDA (the calling thread's
  // current device must be the model's; creates the stream and the static
  // buffers). INVALID_ARGUMENT for non-positive batch limits.
  static absl::StatusOr<std::unique_ptr<ModelExecutor>> Create(
      std::unique_ptr<LlamaForCausalLM> model, KvCache cache, const ExecutorOptions& options = {});
  virtual ~ModelExecutor() = default;
  ModelExecutor(const ModelExecutor&) = delete;
  ModelExecutor& operator=(const ModelExecutor&) = delete;

  // Runs the forward pass of `plan` (a KIND_FORWARD plan), leaving its logits
  // for Sample, after the plan's KV block copies (copy_src/copy_dst, in
  // order). Every rank of the replica calls it with the same plan. On
  // CUDA the work is enqueued; errors of kernels that already ran may show up
  // here or at the next Sample.
  virtual absl::Status Forward(const v1::StepPlan& plan) = 0;

  // Picks one token per logits row of the last Forward (rows.size() must
  // equal the plan's logits_indices_size(), else INVALID_ARGUMENT);
  // `cpu_sampler` handles the CPU path and the rows the GPU sampler cannot.
  // Waits for the device. On CUDA a GPU-sampled row's logprob is that of the
  // chosen token even when logprobs == 0 (the CPU sampler reports NaN then).
  absl::StatusOr<std::vector<SampleResult>> Sample(std::span<const SamplingRow> rows,
                                                   Sampler& cpu_sampler);

  // Forward, then `logits` = the logits as host float32 [rows, vocab] on
  // every rank (a device -> host copy on CUDA: for tests and tools).
  virtual absl::Status Execute(const v1::StepPlan& plan, Tensor& logits) = 0;

  // Runs the largest steps the options allow, so that the activation
  // buffers and the ops' scratch reach their final size before the KV cache
  // is sized from the memory left: a prefill of max_num_batched_tokens tokens
  // over max_num_seqs sequences (SyntheticPrefillPlan in
  // worker/engine/step_plan.h, sampled greedily) and, on CUDA, a padded
  // decode of max_num_seqs sequences at max_model_len (the split-K partials'
  // worst case), plus the buffers that carry max_num_seqs CPU-sampled logits
  // rows to the host. The cache must hold ProfileBlocks()
  // blocks. Collective like Forward. Waits for the device.
  absl::Status ProfileRun();
  int64_t ProfileBlocks() const;

  // CUDA with graphs enabled: runs the widest padded decode (so the ops'
  // workspaces reach their final size), then one padded decode step at each
  // batch bucket with the smallest context bucket (largest first) and
  // captures it; other context buckets are captured on their first step.
  // Collective like Forward. Nothing to do otherwise.
  virtual absl::Status CaptureDecodeGraphs() { return absl::OkStatus(); }

  // Replaces the KV cache (e.g. after a profiling run with a small one);
  // drops captured graphs, which refer to the old cache.
  virtual void SetCache(KvCache cache) { cache_ = std::move(cache); }

  // Waits until all work enqueued by this executor has finished (CUDA) and
  // returns the first error of it.
  virtual absl::Status Synchronize() { return absl::OkStatus(); }

  const LlamaForCausalLM& model() const { return *model_; }
  LlamaForCausalLM& mutable_model() { return *model_; }
  const KvCacheShape& cache_shape() const { return cache_.shape(); }
  const ExecutorOptions& options() const { return options_; }
  const ExecutorStats& stats() const { return stats_; }
  virtual bool graphs_enabled() const { return false; }
  // Decode batch sizes with a graph (CUDA); empty otherwise.
  virtual const std::vector<int>& graph_buckets() const;

 protected:
  ModelExecutor(std::unique_ptr<LlamaForCausalLM> model, KvCache cache,
                const ExecutorOptions& options)
      : model_(std::move(model)), cache_(std::move(cache)), options_(options) {}

  // Sample for rows.size() == logits_rows_.
  virtual absl::StatusOr<std::vector<SampleResult>> SampleRows(std::span<const SamplingRow> rows,
                                                               Sampler& cpu_sampler) = 0;
  // ProfileRun's device-specific part after the prefill (CUDA: a padded
  // decode at max_num_seqs and max_model_len, and the CPU-sampled rows'
  // buffers).
  virtual absl::Status ProfileDecode() { return absl::OkStatus(); }
  int BlockSize() const;
  // Runs the plan's KV block copies on this rank's cache, in order, for every
  // layer's keys and values: memcpy on the CPU, device-to-device copies
  // enqueued on the current stream on CUDA (so before anything enqueued
  // after them, a graph replay included). INVALID_ARGUMENT for a malformed
  // list or a block id outside the cache. Each Forward calls it first.
  absl::Status RunBlockCopies(const v1::StepPlan& plan);

  std::unique_ptr<LlamaForCausalLM> model_;
  KvCache cache_;
  ExecutorOptions options_;
  ExecutorStats stats_;
  int64_t logits_rows_ = 0;  // rows of the last Forward
};

}  // namespace tessera
