// Runs step plans through this rank's model shard and KV cache, and samples
// the next tokens from the logits (rank 0). One per rank; used by the
// leader's engine and by the follower loop alike. Not thread-safe: owned by
// the rank's engine thread (which need not be the thread that built it: on
// CUDA every call makes the executor's device and stream current).
//
// CPU: the plan's arrays are viewed in place, logits are host float32 and the
// worker's Sampler picks the tokens.
//
// CUDA: the plan's arrays are packed into pinned host memory and copied to
// static device buffers in one transfer; the step is enqueued on the
// executor's own stream. Sampling runs on the GPU (ops::Sample) and only the
// token ids and logprobs come back to the host; rows whose parameters the GPU
// sampler does not handle (penalties, top-n logprobs) have their logits row
// copied to the host and go through the CPU Sampler.
// Decode steps (every sequence one token, every row sampled) of up to
// max_graph_batch sequences replay a CUDA graph captured for the next
// bucket size (worker/cuda_graph.h): the inputs are padded to the bucket
// (token 0 at position 0 with KV slot -1, so nothing is stored, and a
// one-token context; padded rows' outputs are ignored) with block tables
// max_model_len / block_size wide. Prefill and mixed steps, larger batches,
// and communicators that cannot be captured (host-staged) run eagerly.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tessera/v1/step_plan.pb.h"
#include "worker/comm/communicator.h"
#include "worker/device/cuda_device.h"
#include "worker/device/cuda_graph.h"
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
  // The longest sequence: the width of a graph's block table and the
  // max_seq_len its attention was captured with. 0 = the model's
  // max_position_embeddings.
  int max_model_len = 0;
  // CUDA graphs for decode steps (CUDA only; needs a communicator that
  // supports capture).
  bool cuda_graphs = true;
  // The largest decode batch replayed from a graph; 0 = max_num_seqs (at most
  // 256 either way: larger decode batches are compute-bound enough to gain
  // little).
  int max_graph_batch = 0;
};

struct ExecutorStats {
  int64_t graph_steps = 0;  // decode steps replayed from a CUDA graph
  int64_t eager_steps = 0;  // steps run op by op
  int64_t graphs_captured = 0;
};

class ModelExecutor {
 public:
  // A CPU executor with default options (the model must be on the CPU).
  ModelExecutor(std::unique_ptr<LlamaForCausalLM> model, KvCache cache);
  // An executor for the model's device. CUDA: the calling thread's current
  // device must be the model's; creates the stream and the static buffers.
  static absl::StatusOr<std::unique_ptr<ModelExecutor>> Create(
      std::unique_ptr<LlamaForCausalLM> model, KvCache cache, const ExecutorOptions& options);
  ~ModelExecutor();
  ModelExecutor(const ModelExecutor&) = delete;
  ModelExecutor& operator=(const ModelExecutor&) = delete;

  // Runs the forward pass of `plan` (a KIND_FORWARD plan), leaving its logits
  // for Sample. Every rank of the replica calls it with the same plan. On
  // CUDA the work is enqueued; errors of kernels that already ran may show up
  // here or at the next Sample.
  absl::Status Forward(const v1::StepPlan& plan);

  // Picks one token per logits row of the last Forward (rows.size() must
  // equal the plan's logits_indices_size()); `cpu_sampler` handles the CPU
  // path and the rows the GPU sampler cannot. Waits for the device. On CUDA a
  // GPU-sampled row's logprob is that of the chosen token even when
  // logprobs == 0 (the CPU sampler reports NaN then).
  absl::StatusOr<std::vector<SampleResult>> Sample(std::span<const SamplingRow> rows,
                                                   Sampler& cpu_sampler);

  // Forward, then `logits` = the logits as host float32 [rows, vocab] on
  // every rank (a device -> host copy on CUDA: for tests and tools).
  absl::Status Execute(const v1::StepPlan& plan, Tensor& logits);

  // Runs the largest steps the options allow, so that the activation
  // buffers and the ops' scratch reach their final size before the KV cache
  // is sized from the memory left: a prefill of max_num_batched_tokens tokens
  // over max_num_seqs sequences (SyntheticPrefillPlan, sampled greedily) and,
  // on CUDA, a padded decode of max_num_seqs sequences. The cache must hold
  // ProfileBlocks() blocks. Collective like Forward. Waits for the device.
  absl::Status ProfileRun();
  int64_t ProfileBlocks() const;

  // CUDA with graphs enabled: runs one padded decode step at each bucket size
  // (largest first, so the ops' workspaces reach their final size) and
  // captures it. Collective like Forward. Nothing to do otherwise.
  absl::Status CaptureDecodeGraphs();

  // Replaces the KV cache (e.g. after a profiling run with a small one);
  // drops captured graphs, which refer to the old cache.
  void SetCache(KvCache cache);

  // Waits until all work enqueued by this executor has finished (CUDA) and
  // returns the first error of it.
  absl::Status Synchronize();

  const LlamaForCausalLM& model() const { return *model_; }
  LlamaForCausalLM& mutable_model() { return *model_; }
  const KvCacheShape& cache_shape() const { return cache_.shape(); }
  const ExecutorOptions& options() const { return options_; }
  const ExecutorStats& stats() const { return stats_; }
  bool graphs_enabled() const { return graphs_enabled_; }
  const std::vector<int>& graph_buckets() const { return buckets_; }

 private:
  // Int32 element offsets of the fields in the packed input buffers (host
  // pinned and device), for capacities T tokens, S sequences, W block-table
  // columns. slot_mapping (int64) comes first so it is 8-byte aligned;
  // block_tables last, so a step copies only the prefix it uses.
  struct InputLayout {
    int64_t tokens = 0, seqs = 0, width = 0;
    int64_t slot = 0, token_ids = 0, positions = 0, logits_indices = 0, qsl = 0, seq_lens = 0,
            block_tables = 0, total = 0;
  };
  struct Graph {
    std::unique_ptr<CudaGraph> graph;
    Tensor logits;  // [bucket, vocab] view the graph writes
    int64_t generation = -1;
  };

  ModelExecutor(std::unique_ptr<LlamaForCausalLM> model, KvCache cache,
                const ExecutorOptions& options);
  absl::Status InitDevice();
  int BlockSize() const;
  absl::Status ForwardCpu(const v1::StepPlan& plan);
  absl::Status ForwardCuda(const v1::StepPlan& plan);
  absl::StatusOr<std::vector<SampleResult>> SampleCuda(std::span<const SamplingRow> rows,
                                                       Sampler& cpu_sampler);
  // Makes the input buffers hold T tokens, S sequences, W columns.
  absl::Status ReserveInputs(int64_t tokens, int64_t seqs, int64_t width);
  // Packs the plan (dense) or a decode plan padded to `bucket` rows with
  // graph_width_ columns into the pinned buffer, copies it to the device and
  // returns the device views. `plan` may be null for an all-padding batch.
  absl::StatusOr<ModelInput> StageDense(const v1::StepPlan& plan);
  absl::StatusOr<ModelInput> StagePaddedDecode(const v1::StepPlan* plan, int bucket);
  absl::StatusOr<ModelInput> Upload(int64_t used_int32s, ModelInput views);
  ModelInput DeviceViews(int64_t n, int64_t b, int64_t width, int64_t m, int max_query_len,
                         int max_seq_len) const;
  // Captures the graph of a padded decode step of `bucket` rows whose inputs
  // are staged; replaces any older one.
  absl::Status CaptureBucket(int bucket);
  bool IsGraphableDecode(const v1::StepPlan& plan) const;

  std::unique_ptr<LlamaForCausalLM> model_;
  KvCache cache_;
  ExecutorOptions options_;
  ExecutorStats stats_;
  Tensor logits_;  // of the last Forward: host float32 (CPU) or a device view
  int64_t logits_rows_ = 0;
  bool logits_external_ = false;  // logits_ is a caller's tensor (CPU Execute)

  // ---- CUDA only ----
  int device_ = -1;
  CudaStream stream_;
  CudaEvent inputs_consumed_;  // the last input upload has been read
  InputLayout layout_;
  Tensor host_inputs_;  // pinned int32 [layout_.total]
  Tensor dev_inputs_;   // device int32 [layout_.total]
  // Sampling parameters and results: pinned host and device mirrors.
  int64_t sample_capacity_ = 0;
  Tensor host_sample_in_, dev_sample_in_;    // int32 [8 * capacity]: seed, step, temp, k, p, min_p
  Tensor host_sample_out_, dev_sample_out_;  // int32 [2 * capacity]: tokens, logprobs
  Tensor host_row_;                          // one logits row for the CPU sampler (float32)
  bool graphs_enabled_ = false;
  int graph_width_ = 0;    // block-table columns of graph steps
  int graph_seq_len_ = 0;  // max_seq_len the graphs were captured with
  std::vector<int> buckets_;
  std::map<int, Graph> graphs_;
};

// A prefill batch for profiling: `num_seqs` sequences sharing `num_tokens`
// tokens (as evenly as possible), each starting at position 0, each sampling
// its last token, with blocks [0, *blocks_used) of `block_size` tokens
// assigned in order. Token ids cycle through [0, vocab).
v1::StepPlan SyntheticPrefillPlan(int num_tokens, int num_seqs, int block_size, int32_t vocab,
                                  int64_t* blocks_used);

}  // namespace tessera
