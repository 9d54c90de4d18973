// The CUDA executor (see ModelExecutor for the contract).
// CUDA: the plan's arrays are packed into pinned host memory and copied to
// static device buffers in one transfer; the step is enqueued on the
// executor's own stream. Sampling runs on the GPU (ops::Sample) and only the
// token ids and logprobs come back to the host; rows whose parameters the GPU
// sampler does not handle (penalties, top-n logprobs) have their logits row
// copied to the host and go through the CPU Sampler.
// Decode steps (every sequence one token, every row sampled) of up to
// max_graph_batch sequences replay a CUDA graph captured for the next
// bucket size (worker/device/cuda_graph.h): the inputs are padded to the bucket
// (token 0 at position 0 with KV slot -1, so nothing is stored, and a
// one-token context; padded rows' outputs are ignored) with block tables
// max_model_len / block_size wide. Prefill and mixed steps, larger batches,
// and communicators that cannot be captured (host-staged) run eagerly.
//
// Not thread-safe (see ModelExecutor); every call makes the executor's
// device and stream current for the calling thread.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "worker/device/cuda_device.h"
#include "worker/device/cuda_graph.h"
#include "worker/exec/model_executor.h"

namespace tessera {

class CudaModelExecutor final : public ModelExecutor {
 public:
  // The calling thread's current device must be the model's. Options are
  // validated by ModelExecutor::Create.
  static absl::StatusOr<std::unique_ptr<ModelExecutor>> Create(
      std::unique_ptr<LlamaForCausalLM> model, KvCache cache, const ExecutorOptions& options);
  ~CudaModelExecutor() override;

  absl::Status Forward(const v1::StepPlan& plan) override;
  absl::Status Execute(const v1::StepPlan& plan, Tensor& logits) override;
  absl::Status CaptureDecodeGraphs() override;
  void SetCache(KvCache cache) override;
  absl::Status Synchronize() override;
  bool graphs_enabled() const override { return graphs_enabled_; }
  const std::vector<int>& graph_buckets() const override { return buckets_; }

 private:
  // Makes the executor's device and stream current for the calling thread
  // (the engine thread need not be the one that built the executor).
  class Scope {
   public:
    Scope(int device, void* stream) : device_(device), stream_(stream) {}

   private:
    CudaDeviceGuard device_;
    ScopedCudaStream stream_;
  };

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

  CudaModelExecutor(std::unique_ptr<LlamaForCausalLM> model, KvCache cache,
                    const ExecutorOptions& options)
      : ModelExecutor(std::move(model), std::move(cache), options) {}
  absl::Status InitDevice();
  absl::StatusOr<std::vector<SampleResult>> SampleRows(std::span<const SamplingRow> rows,
                                                       Sampler& cpu_sampler) override;
  absl::Status ProfileDecode() override;
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

  Tensor logits_;  // of the last Forward: a device view
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

}  // namespace tessera
