// The CUDA executor (see ModelExecutor for the contract).
// CUDA: the plan's arrays are packed into pinned host memory and copied to
// static device buffers in one transfer; the step is enqueued on the
// executor's own stream. Sampling runs on the GPU (ops::Sample) and only the
// token ids and logprobs come back to the host; rows whose parameters the GPU
// sampler does not handle (penalties, top-n logprobs) are gathered on the
// device, copied to pinned host memory in one transfer and go through the
// CPU Sampler.
// Decode steps (every sequence one token, every row sampled) of up to
// max_graph_batch sequences replay a CUDA graph captured for their shape:
// the next batch bucket and the next context bucket (in KV blocks) of their
// longest sequence (worker/exec/cuda_staging.h). The inputs are padded to the
// batch bucket (token 0 at position 0 with KV slot -1, so nothing is stored,
// and a one-token context; padded rows' outputs are ignored) and the block
// tables packed as wide as the context bucket, which also sizes the
// attention's split-K grid: a step pays for at most twice its longest
// context, not for max_model_len. Graphs are kept in a bounded LRU cache
// (worker/exec/decode_graph_cache.h) and replayed only while the activation
// buffers and the ops' scratch are where they were at capture. Prefill and
// mixed steps, larger batches, and communicators that cannot be captured
// (host-staged) run eagerly.
//
// Not thread-safe (see ModelExecutor); every call makes the executor's
// device and stream current for the calling thread.
#pragma once

#include <memory>
#include <vector>

#include "worker/device/cuda_device.h"
#include "worker/device/cuda_graph.h"
#include "worker/exec/cuda_staging.h"
#include "worker/exec/decode_graph_cache.h"
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
  const std::vector<int>& graph_buckets() const override { return shapes_.batches; }

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

  CudaModelExecutor(std::unique_ptr<LlamaForCausalLM> model, KvCache cache,
                    const ExecutorOptions& options)
      : ModelExecutor(std::move(model), std::move(cache), options) {}
  absl::Status InitDevice();
  absl::StatusOr<std::vector<SampleResult>> SampleRows(std::span<const SamplingRow> rows,
                                                       Sampler& cpu_sampler) override;
  absl::Status ProfileDecode() override;
  // Makes the input buffers hold T tokens, S sequences, W columns.
  absl::Status ReserveInputs(int64_t tokens, int64_t seqs, int64_t width);
  // Packs the plan (dense) or a decode plan padded to `key` into the pinned
  // buffer, copies the used prefix to the device and returns the device
  // views. `plan` may be null for an all-padding batch.
  absl::StatusOr<ModelInput> StageDense(const v1::StepPlan& plan);
  absl::StatusOr<ModelInput> StagePaddedDecode(const v1::StepPlan* plan, DecodeGraphKey key);
  absl::StatusOr<ModelInput> Upload(const StagedBatch& staged);
  ModelInput DeviceViews(const StagedBatch& staged) const;
  // The device views of a padded decode at `key` (what its graph reads).
  ModelInput PaddedDecodeViews(DecodeGraphKey key) const;
  DecodeGraphCache::Generations Generations() const;
  // Captures the graph of a padded decode step of shape `key` whose inputs
  // are staged; replaces any older one. A failed capture leaves the shape
  // eager.
  absl::Status CaptureGraph(DecodeGraphKey key);
  // Makes the CPU-sampled rows' buffers (device gather, pinned host) hold
  // `rows` logits rows.
  absl::Status ReserveCpuRows(int64_t rows);

  Tensor logits_;  // of the last Forward: a device view
  int device_ = -1;
  CudaStream stream_;
  CudaEvent inputs_consumed_;  // the last input upload has been read
  InputLayout layout_;
  Tensor host_inputs_;  // pinned int32 [layout_.total]
  Tensor dev_inputs_;   // device int32 [layout_.total]
  // Sampling parameters and results: pinned host and device mirrors.
  int64_t sample_capacity_ = 0;
  Tensor host_sample_in_, dev_sample_in_;    // int32 [9 * capacity]: seed, step, temp, k, p,
                                             // min_p, the CPU-sampled rows' indices
  Tensor host_sample_out_, dev_sample_out_;  // int32 [2 * capacity]: tokens, logprobs
  // The CPU-sampled rows' logits, gathered on the device and copied to the
  // host at once: [capacity, vocab] in the logits dtype.
  int64_t cpu_rows_capacity_ = 0;
  Tensor dev_cpu_rows_, host_cpu_rows_;
  bool graphs_enabled_ = false;
  int graph_width_ = 0;       // block-table columns of the widest decode graph
  DecodeGraphShapes shapes_;  // shapes_.batches is graph_buckets()
  DecodeGraphCache graphs_{1};
};

}  // namespace tessera
