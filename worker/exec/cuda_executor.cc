#include "worker/exec/cuda_executor.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "kernels/ops.h"

namespace tessera {
namespace {

constexpr int kMaxGraphBatch = 256;

}  // namespace

CudaModelExecutor::~CudaModelExecutor() {
  if (device_ < 0) return;  // InitDevice failed before choosing the device
  // Graphs and buffers go before the stream they were used on.
  Scope scope(device_, stream_.get());
  if (absl::Status s = SynchronizeCurrentStream(); !s.ok()) {
    spdlog::warn("CudaModelExecutor: {}", s.message());
  }
  graphs_.Clear();
}

absl::StatusOr<std::unique_ptr<ModelExecutor>> CudaModelExecutor::Create(
    std::unique_ptr<LlamaForCausalLM> model, KvCache cache, const ExecutorOptions& options) {
  std::unique_ptr<CudaModelExecutor> e(
      new CudaModelExecutor(std::move(model), std::move(cache), options));
  RETURN_IF_ERROR(e->InitDevice());
  return std::unique_ptr<ModelExecutor>(std::move(e));
}

absl::Status CudaModelExecutor::InitDevice() {
  ASSIGN_OR_RETURN(device_, CurrentCudaDevice());
  ASSIGN_OR_RETURN(stream_, CudaStream::Create());
  ASSIGN_OR_RETURN(inputs_consumed_, CudaEvent::Create());
  Scope scope(device_, stream_.get());
  const int block_size = BlockSize();
  if (block_size < 1) {
    return absl::InvalidArgumentError("ModelExecutor: no block size (options or cache)");
  }
  const int64_t max_len = options_.max_model_len > 0 ? options_.max_model_len
                                                     : model_->config().max_position_embeddings;
  graph_width_ = static_cast<int>((max_len + block_size - 1) / block_size);
  const int64_t seqs = options_.max_num_seqs;
  const int64_t tokens = std::max<int64_t>(options_.max_num_batched_tokens, seqs);
  RETURN_IF_ERROR(ReserveInputs(tokens, seqs, graph_width_));
  RETURN_IF_ERROR(model_->ReserveActivations(tokens, seqs));
  graphs_enabled_ = options_.cuda_graphs && model_->comm().SupportsGraphCapture();
  if (graphs_enabled_) {
    const int max_graph =
        std::min(options_.max_graph_batch > 0 ? options_.max_graph_batch : options_.max_num_seqs,
                 kMaxGraphBatch);
    shapes_.batches = DecodeGraphBuckets(std::min<int>(max_graph, options_.max_num_seqs));
    // The smallest context bucket is one split-K partition: below it only the
    // block table's width would change.
    shapes_.contexts = DecodeContextBuckets(
        graph_width_, (ops::kDecodePartitionTokens + block_size - 1) / block_size);
    shapes_.block_size = block_size;
    graphs_ = DecodeGraphCache(options_.max_decode_graphs);
  } else if (options_.cuda_graphs) {
    spdlog::info("CUDA graphs off: the {} communicator cannot be captured", model_->comm().name());
  }
  return absl::OkStatus();
}

absl::Status CudaModelExecutor::ReserveInputs(int64_t tokens, int64_t seqs, int64_t width) {
  if (tokens <= layout_.tokens && seqs <= layout_.seqs && width <= layout_.width) {
    return absl::OkStatus();
  }
  const InputLayout l =
      InputLayout::For(std::max(tokens, layout_.tokens), std::max(seqs, layout_.seqs),
                       std::max(width, layout_.width));
  // The old buffers may still be read by an enqueued copy or graph.
  RETURN_IF_ERROR(SynchronizeCurrentStream());
  graphs_.Clear();  // they read the old device buffer
  host_inputs_ = Tensor::EmptyPinned(DType::kInt32, {l.total});
  ASSIGN_OR_RETURN(dev_inputs_, Tensor::TryEmpty(DType::kInt32, {l.total}, Device::kCuda));
  layout_ = l;
  return absl::OkStatus();
}

ModelInput CudaModelExecutor::DeviceViews(const StagedBatch& st) const {
  int32_t* d = dev_inputs_.data_as<int32_t>();  // device address arithmetic only
  auto view = [&](int64_t offset, DType dtype, std::vector<int64_t> shape) {
    return Tensor::View(d + offset, dtype, std::move(shape), Device::kCuda);
  };
  ModelInput in;
  in.slot_mapping = view(layout_.slot, DType::kInt64, {st.tokens});
  in.token_ids = view(layout_.token_ids, DType::kInt32, {st.tokens});
  in.positions = view(layout_.positions, DType::kInt32, {st.tokens});
  in.logits_indices = view(layout_.logits_indices, DType::kInt32, {st.logits_rows});
  in.attn.query_start_loc = view(layout_.qsl, DType::kInt32, {st.seqs + 1});
  in.attn.seq_lens = view(layout_.seq_lens, DType::kInt32, {st.seqs});
  in.attn.block_tables = view(layout_.block_tables, DType::kInt32, {st.seqs, st.width});
  in.attn.max_query_len = st.max_query_len;
  in.attn.max_seq_len = st.max_seq_len;
  in.attn.num_decodes = st.num_decodes;
  return in;
}

ModelInput CudaModelExecutor::PaddedDecodeViews(DecodeGraphKey key) const {
  // What PackPaddedDecode reports, without touching the host buffer.
  StagedBatch st;
  st.tokens = st.seqs = st.logits_rows = key.batch;
  st.width = key.context_blocks;
  st.max_query_len = 1;
  st.max_seq_len = key.context_blocks * BlockSize();
  st.num_decodes = key.batch;
  return DeviceViews(st);
}

absl::StatusOr<ModelInput> CudaModelExecutor::Upload(const StagedBatch& staged) {
  Tensor dst = dev_inputs_.Slice(0, staged.used_int32s);
  RETURN_IF_ERROR(dst.CopyFromAsync(host_inputs_.Slice(0, staged.used_int32s)));
  RETURN_IF_ERROR(inputs_consumed_.Record());
  return DeviceViews(staged);
}

absl::StatusOr<ModelInput> CudaModelExecutor::StageDense(const v1::StepPlan& plan) {
  RETURN_IF_ERROR(CheckPlanShape(plan));
  // The logits_indices field is `tokens` long in the layout.
  RETURN_IF_ERROR(ReserveInputs(std::max(plan.token_ids_size(), plan.logits_indices_size()),
                                plan.seq_lens_size(), plan.max_blocks_per_seq()));
  RETURN_IF_ERROR(inputs_consumed_.Synchronize());  // the previous upload has left
  return Upload(PackDense(plan, layout_, host_inputs_.data_as<int32_t>()));
}

absl::StatusOr<ModelInput> CudaModelExecutor::StagePaddedDecode(const v1::StepPlan* plan,
                                                                DecodeGraphKey key) {
  RETURN_IF_ERROR(ReserveInputs(key.batch, key.batch, key.context_blocks));
  RETURN_IF_ERROR(inputs_consumed_.Synchronize());
  return Upload(PackPaddedDecode(plan, key, BlockSize(), layout_, host_inputs_.data_as<int32_t>()));
}

DecodeGraphCache::Generations CudaModelExecutor::Generations() const {
  return {model_->activations_generation(), ops::ScratchGeneration()};
}

absl::Status CudaModelExecutor::CaptureGraph(DecodeGraphKey key) {
  const ModelInput in = PaddedDecodeViews(key);
  Tensor logits;
  absl::StatusOr<std::unique_ptr<CudaGraph>> graph = CudaGraph::Capture([&]() -> absl::Status {
    logits = Tensor();
    return model_->Forward(in, cache_, logits);
  });
  DecodeGraphCache::Entry entry;
  entry.generations = Generations();
  if (!graph.ok()) {
    // This shape stays eager (every rank runs the same collectives either way).
    spdlog::warn(
        "CUDA graph capture for decode batch {} with {} context blocks failed; it runs eagerly: "
        "{}",
        key.batch, key.context_blocks, graph.status().message());
  } else {
    entry.graph = *std::move(graph);
    entry.logits = logits;
    ++stats_.graphs_captured;
  }
  graphs_.Put(key, std::move(entry));
  return absl::OkStatus();
}

absl::Status CudaModelExecutor::ProfileDecode() {
  Scope scope(device_, stream_.get());
  // The widest decode: the ops' scratch (split-K partials for max_model_len)
  // and the CPU-sampled rows' buffers reach their final size before the KV
  // cache is sized from the memory left.
  RETURN_IF_ERROR(ReserveCpuRows(options_.max_num_seqs));
  ASSIGN_OR_RETURN(const ModelInput in,
                   StagePaddedDecode(nullptr, {options_.max_num_seqs, graph_width_}));
  Tensor logits;
  return model_->Forward(in, cache_, logits);
}

absl::Status CudaModelExecutor::CaptureDecodeGraphs() {
  if (!graphs_enabled_) return absl::OkStatus();
  Scope scope(device_, stream_.get());
  // The widest decode first, so the ops' scratch has its final size before
  // any graph records its address.
  ASSIGN_OR_RETURN(ModelInput big,
                   StagePaddedDecode(nullptr, {options_.max_num_seqs, graph_width_}));
  Tensor logits;
  RETURN_IF_ERROR(model_->Forward(big, cache_, logits));
  // Every batch bucket at the smallest context bucket (short contexts come
  // first); longer contexts are captured on their first step.
  const int context = shapes_.contexts.front();
  for (auto it = shapes_.batches.rbegin(); it != shapes_.batches.rend(); ++it) {
    const DecodeGraphKey key{*it, context};
    ASSIGN_OR_RETURN(ModelInput in, StagePaddedDecode(nullptr, key));
    logits = Tensor();
    RETURN_IF_ERROR(model_->Forward(in, cache_, logits));  // warm-up at this shape
    RETURN_IF_ERROR(CaptureGraph(key));
  }
  RETURN_IF_ERROR(SynchronizeCurrentStream());
  spdlog::info(
      "captured {} CUDA graphs for decode batches up to {} with contexts up to {} tokens; "
      "contexts up to {} tokens ({} buckets) are captured on first use, at most {} graphs kept",
      stats_.graphs_captured, shapes_.batches.empty() ? 0 : shapes_.batches.back(),
      context * BlockSize(), graph_width_ * BlockSize(), shapes_.contexts.size(),
      graphs_.capacity());
  return absl::OkStatus();
}

void CudaModelExecutor::SetCache(KvCache cache) {
  {
    Scope scope(device_, stream_.get());
    if (absl::Status s = SynchronizeCurrentStream(); !s.ok()) {
      spdlog::warn("CudaModelExecutor::SetCache: {}", s.message());
    }
  }
  graphs_.Clear();
  cache_ = std::move(cache);
}

absl::Status CudaModelExecutor::Synchronize() {
  Scope scope(device_, stream_.get());
  return SynchronizeCurrentStream();
}

absl::Status CudaModelExecutor::Forward(const v1::StepPlan& plan) {
  Scope scope(device_, stream_.get());
  // Copy-on-write of forked blocks: enqueued on this stream ahead of the
  // step's input upload and its forward (eager or a graph replay, which
  // captured only the forward), so the step reads the copies.
  RETURN_IF_ERROR(RunBlockCopies(plan));
  const std::optional<DecodeGraphKey> key =
      graphs_enabled_ ? ChooseDecodeGraph(plan, shapes_) : std::nullopt;
  if (key.has_value()) {
    const int b = plan.seq_lens_size();
    ASSIGN_OR_RETURN(const ModelInput in, StagePaddedDecode(&plan, *key));
    DecodeGraphCache::Entry* entry = graphs_.Find(*key, Generations());
    if (entry != nullptr && entry->graph != nullptr) {
      RETURN_IF_ERROR(entry->graph->Replay());
      logits_ = entry->logits.Slice(0, b);
      logits_rows_ = b;
      ++stats_.graph_steps;
      return absl::OkStatus();
    }
    // No graph for this shape (yet, or its capture failed): eager at the
    // padded shape.
    Tensor logits;
    RETURN_IF_ERROR(model_->Forward(in, cache_, logits));
    logits_ = logits.Slice(0, b);
    logits_rows_ = b;
    ++stats_.eager_steps;
    // That step was this shape's warm-up: capture it for the next time.
    if (entry == nullptr) RETURN_IF_ERROR(CaptureGraph(*key));
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(const ModelInput in, StageDense(plan));
  Tensor logits;
  RETURN_IF_ERROR(model_->Forward(in, cache_, logits));
  logits_ = logits;
  logits_rows_ = plan.logits_indices_size();
  ++stats_.eager_steps;
  return absl::OkStatus();
}

absl::Status CudaModelExecutor::Execute(const v1::StepPlan& plan, Tensor& logits) {
  RETURN_IF_ERROR(Forward(plan));
  Scope scope(device_, stream_.get());
  const int64_t vocab = model_->config().vocab_size;
  logits = Tensor::Empty(DType::kFloat32, {logits_rows_, vocab});
  if (logits_rows_ == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(Tensor host, logits_.To(Device::kCpu));
  ConvertToFloat32(host.data(), host.dtype(), host.numel(), logits.data_as<float>());
  return absl::OkStatus();
}

}  // namespace tessera
