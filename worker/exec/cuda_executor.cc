#include "worker/exec/cuda_executor.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"

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
  graphs_.clear();
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
  graph_seq_len_ = static_cast<int>(max_len);
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
    buckets_ = DecodeGraphBuckets(std::min<int>(max_graph, options_.max_num_seqs));
  } else if (options_.cuda_graphs) {
    spdlog::info("CUDA graphs off: the {} communicator cannot be captured", model_->comm().name());
  }
  return absl::OkStatus();
}

absl::Status CudaModelExecutor::ReserveInputs(int64_t tokens, int64_t seqs, int64_t width) {
  if (tokens <= layout_.tokens && seqs <= layout_.seqs && width <= layout_.width) {
    return absl::OkStatus();
  }
  InputLayout l;
  l.tokens = std::max(tokens, layout_.tokens);
  l.seqs = std::max(seqs, layout_.seqs);
  l.width = std::max(width, layout_.width);
  l.slot = 0;
  l.token_ids = l.slot + 2 * l.tokens;
  l.positions = l.token_ids + l.tokens;
  l.logits_indices = l.positions + l.tokens;
  l.qsl = l.logits_indices + l.tokens;
  l.seq_lens = l.qsl + l.seqs + 1;
  l.block_tables = l.seq_lens + l.seqs;
  l.total = l.block_tables + l.seqs * l.width;
  // The old buffers may still be read by an enqueued copy or graph.
  RETURN_IF_ERROR(SynchronizeCurrentStream());
  graphs_.clear();  // they read the old device buffer
  host_inputs_ = Tensor::EmptyPinned(DType::kInt32, {l.total});
  ASSIGN_OR_RETURN(dev_inputs_, Tensor::TryEmpty(DType::kInt32, {l.total}, Device::kCuda));
  layout_ = l;
  return absl::OkStatus();
}

ModelInput CudaModelExecutor::DeviceViews(int64_t n, int64_t b, int64_t width, int64_t m,
                                          int max_query_len, int max_seq_len) const {
  int32_t* d = dev_inputs_.data_as<int32_t>();  // device address arithmetic only
  auto view = [&](int64_t offset, DType dtype, std::vector<int64_t> shape) {
    return Tensor::View(d + offset, dtype, std::move(shape), Device::kCuda);
  };
  ModelInput in;
  in.slot_mapping = view(layout_.slot, DType::kInt64, {n});
  in.token_ids = view(layout_.token_ids, DType::kInt32, {n});
  in.positions = view(layout_.positions, DType::kInt32, {n});
  in.logits_indices = view(layout_.logits_indices, DType::kInt32, {m});
  in.attn.query_start_loc = view(layout_.qsl, DType::kInt32, {b + 1});
  in.attn.seq_lens = view(layout_.seq_lens, DType::kInt32, {b});
  in.attn.block_tables = view(layout_.block_tables, DType::kInt32, {b, width});
  in.attn.max_query_len = max_query_len;
  in.attn.max_seq_len = max_seq_len;
  return in;
}

absl::StatusOr<ModelInput> CudaModelExecutor::Upload(int64_t used_int32s, ModelInput views) {
  Tensor dst = dev_inputs_.Slice(0, used_int32s);
  RETURN_IF_ERROR(dst.CopyFromAsync(host_inputs_.Slice(0, used_int32s)));
  RETURN_IF_ERROR(inputs_consumed_.Record());
  return views;
}

absl::StatusOr<ModelInput> CudaModelExecutor::StageDense(const v1::StepPlan& plan) {
  const int64_t n = plan.token_ids_size();
  const int64_t b = plan.seq_lens_size();
  const int64_t w = plan.max_blocks_per_seq();
  const int64_t m = plan.logits_indices_size();  // may exceed n: a row sampled n times
  if (plan.positions_size() != n || plan.slot_mapping_size() != n ||
      plan.query_start_loc_size() != b + 1 || plan.block_tables_size() != b * w) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step plan ", plan.step(), " is inconsistent: ", n, " tokens, ", plan.positions_size(),
        " positions, ", plan.slot_mapping_size(), " slots, ", b, " sequences, ",
        plan.query_start_loc_size(), " query starts, ", plan.block_tables_size(),
        " block-table entries for width ", w, ", ", m, " logits rows"));
  }
  // The logits_indices field is `tokens` long in the layout.
  RETURN_IF_ERROR(ReserveInputs(std::max(n, m), b, w));
  RETURN_IF_ERROR(inputs_consumed_.Synchronize());  // the previous upload has left
  int32_t* h = host_inputs_.data_as<int32_t>();
  auto put = [&](int64_t offset, const void* src, int64_t bytes) {
    if (bytes > 0) std::memcpy(h + offset, src, bytes);
  };
  put(layout_.slot, plan.slot_mapping().data(), n * 8);
  put(layout_.token_ids, plan.token_ids().data(), n * 4);
  put(layout_.positions, plan.positions().data(), n * 4);
  put(layout_.logits_indices, plan.logits_indices().data(), m * 4);
  put(layout_.qsl, plan.query_start_loc().data(), (b + 1) * 4);
  put(layout_.seq_lens, plan.seq_lens().data(), b * 4);
  put(layout_.block_tables, plan.block_tables().data(), b * w * 4);
  return Upload(layout_.block_tables + b * w,
                DeviceViews(n, b, w, m, plan.max_query_len(), plan.max_seq_len()));
}

absl::StatusOr<ModelInput> CudaModelExecutor::StagePaddedDecode(const v1::StepPlan* plan,
                                                                int bucket) {
  const int64_t real = plan == nullptr ? 0 : plan->seq_lens_size();
  const int64_t w = graph_width_;
  RETURN_IF_ERROR(ReserveInputs(bucket, bucket, w));
  RETURN_IF_ERROR(inputs_consumed_.Synchronize());
  int32_t* h = host_inputs_.data_as<int32_t>();
  auto* slots = reinterpret_cast<int64_t*>(h + layout_.slot);
  int32_t* tokens = h + layout_.token_ids;
  int32_t* positions = h + layout_.positions;
  int32_t* indices = h + layout_.logits_indices;
  int32_t* qsl = h + layout_.qsl;
  int32_t* seq_lens = h + layout_.seq_lens;
  int32_t* tables = h + layout_.block_tables;
  for (int64_t i = 0; i < bucket; ++i) {
    const bool live = i < real;
    slots[i] = live ? plan->slot_mapping(i) : -1;  // -1: store nothing
    tokens[i] = live ? plan->token_ids(i) : 0;
    positions[i] = live ? plan->positions(i) : 0;
    seq_lens[i] = live ? plan->seq_lens(i) : 1;  // a one-token context in block 0
    indices[i] = static_cast<int32_t>(i);
    qsl[i] = static_cast<int32_t>(i);
  }
  qsl[bucket] = bucket;
  std::memset(tables, 0, sizeof(int32_t) * bucket * w);
  if (real > 0) {
    const int64_t pw = plan->max_blocks_per_seq();
    for (int64_t i = 0; i < real; ++i) {
      std::memcpy(tables + i * w, plan->block_tables().data() + i * pw, pw * 4);
    }
  }
  return Upload(layout_.block_tables + bucket * w,
                DeviceViews(bucket, bucket, w, bucket, 1, graph_seq_len_));
}

bool CudaModelExecutor::IsGraphableDecode(const v1::StepPlan& plan) const {
  const int b = plan.seq_lens_size();
  if (!graphs_enabled_ || buckets_.empty() || b == 0 || b > buckets_.back()) return false;
  if (plan.token_ids_size() != b || plan.logits_indices_size() != b || plan.max_query_len() != 1 ||
      plan.max_blocks_per_seq() > graph_width_ || plan.max_seq_len() > graph_seq_len_ ||
      plan.block_tables_size() != b * plan.max_blocks_per_seq()) {
    return false;
  }
  for (int i = 0; i < b; ++i) {
    if (plan.logits_indices(i) != i || plan.query_start_loc(i + 1) != i + 1) return false;
  }
  return true;
}

absl::Status CudaModelExecutor::CaptureBucket(int bucket) {
  const ModelInput in = DeviceViews(bucket, bucket, graph_width_, bucket, 1, graph_seq_len_);
  Tensor logits;
  absl::StatusOr<std::unique_ptr<CudaGraph>> graph = CudaGraph::Capture([&]() -> absl::Status {
    logits = Tensor();
    return model_->Forward(in, cache_, logits);
  });
  Graph& entry = graphs_[bucket];
  entry.generation = model_->activations_generation();
  if (!graph.ok()) {
    // This bucket stays eager (every rank runs the same collectives either way).
    spdlog::warn("CUDA graph capture for decode batch {} failed; it runs eagerly: {}", bucket,
                 graph.status().message());
    entry.graph = nullptr;
    return absl::OkStatus();
  }
  entry.graph = *std::move(graph);
  entry.logits = logits;
  ++stats_.graphs_captured;
  return absl::OkStatus();
}

absl::Status CudaModelExecutor::ProfileDecode() {
  Scope scope(device_, stream_.get());
  ASSIGN_OR_RETURN(const ModelInput in, StagePaddedDecode(nullptr, options_.max_num_seqs));
  Tensor logits;
  return model_->Forward(in, cache_, logits);
}

absl::Status CudaModelExecutor::CaptureDecodeGraphs() {
  if (!graphs_enabled_) return absl::OkStatus();
  Scope scope(device_, stream_.get());
  // One decode at the largest batch first, so the ops' scratch has its final
  // size before any graph records its address.
  ASSIGN_OR_RETURN(ModelInput big, StagePaddedDecode(nullptr, options_.max_num_seqs));
  Tensor logits;
  RETURN_IF_ERROR(model_->Forward(big, cache_, logits));
  for (auto it = buckets_.rbegin(); it != buckets_.rend(); ++it) {
    ASSIGN_OR_RETURN(ModelInput in, StagePaddedDecode(nullptr, *it));
    logits = Tensor();
    RETURN_IF_ERROR(model_->Forward(in, cache_, logits));  // warm-up at this shape
    RETURN_IF_ERROR(CaptureBucket(*it));
  }
  RETURN_IF_ERROR(SynchronizeCurrentStream());
  spdlog::info("captured {} CUDA graphs for decode batches up to {}", stats_.graphs_captured,
               buckets_.empty() ? 0 : buckets_.back());
  return absl::OkStatus();
}

void CudaModelExecutor::SetCache(KvCache cache) {
  {
    Scope scope(device_, stream_.get());
    if (absl::Status s = SynchronizeCurrentStream(); !s.ok()) {
      spdlog::warn("CudaModelExecutor::SetCache: {}", s.message());
    }
  }
  graphs_.clear();
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
  const int b = plan.seq_lens_size();
  if (IsGraphableDecode(plan)) {
    const int bucket = BucketFor(buckets_, b);
    ASSIGN_OR_RETURN(const ModelInput in, StagePaddedDecode(&plan, bucket));
    auto it = graphs_.find(bucket);
    if (it != graphs_.end() && it->second.generation == model_->activations_generation()) {
      if (it->second.graph != nullptr) {
        RETURN_IF_ERROR(it->second.graph->Replay());
        logits_ = it->second.logits.Slice(0, b);
        logits_rows_ = b;
        ++stats_.graph_steps;
        return absl::OkStatus();
      }
      // A bucket whose capture failed: eager at the padded shape.
    }
    Tensor logits;
    RETURN_IF_ERROR(model_->Forward(in, cache_, logits));
    logits_ = logits.Slice(0, b);
    logits_rows_ = b;
    ++stats_.eager_steps;
    // That step was this shape's warm-up: capture it for the next time.
    if (it == graphs_.end() || it->second.generation != model_->activations_generation()) {
      RETURN_IF_ERROR(CaptureBucket(bucket));
    }
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
