#include "worker/exec/model_executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "worker/engine/step_plan.h"

namespace tessera {
namespace {

constexpr int kMaxGraphBatch = 256;

// Makes the executor's device and stream current for the calling thread (the
// engine thread need not be the one that built the executor).
class DeviceScope {
 public:
  DeviceScope(int device, void* stream) : device_(device), stream_(stream) {}

 private:
  CudaDeviceGuard device_;
  ScopedCudaStream stream_;
};

// Whether the GPU sampler implements everything `p` asks for.
bool GpuSamplable(const SamplingParams& p) {
  return p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f &&
         p.frequency_penalty == 0.0f && p.logprobs == 0;
}

}  // namespace

v1::StepPlan SyntheticPrefillPlan(int num_tokens, int num_seqs, int block_size, int32_t vocab,
                                  int64_t* blocks_used) {
  v1::StepPlan plan;
  plan.set_kind(v1::StepPlan::KIND_FORWARD);
  num_seqs = std::max(1, std::min(num_seqs, num_tokens));
  std::vector<int> lens(num_seqs, num_tokens / num_seqs);
  for (int b = 0; b < num_tokens % num_seqs; ++b) ++lens[b];
  int max_blocks = 0;
  int max_len = 0;
  for (int len : lens) {
    max_blocks = std::max(max_blocks, (len + block_size - 1) / block_size);
    max_len = std::max(max_len, len);
  }
  plan.set_max_blocks_per_seq(max_blocks);
  plan.set_max_query_len(max_len);
  plan.set_max_seq_len(max_len);
  int64_t next_block = 0;
  int row = 0;
  plan.add_query_start_loc(0);
  for (int b = 0; b < num_seqs; ++b) {
    const int64_t first = next_block;
    const int used = (lens[b] + block_size - 1) / block_size;
    for (int pos = 0; pos < lens[b]; ++pos) {
      plan.add_token_ids(static_cast<int32_t>((row + pos) % vocab));
      plan.add_positions(pos);
      plan.add_slot_mapping((first + pos / block_size) * block_size + pos % block_size);
    }
    row += lens[b];
    plan.add_query_start_loc(row);
    plan.add_seq_lens(lens[b]);
    for (int j = 0; j < max_blocks; ++j) {
      plan.add_block_tables(j < used ? static_cast<int32_t>(first + j) : 0);
    }
    plan.add_logits_indices(row - 1);
    next_block += used;
  }
  if (blocks_used != nullptr) *blocks_used = next_block;
  return plan;
}

ModelExecutor::ModelExecutor(std::unique_ptr<LlamaForCausalLM> model, KvCache cache)
    : ModelExecutor(std::move(model), std::move(cache), ExecutorOptions{}) {}

ModelExecutor::ModelExecutor(std::unique_ptr<LlamaForCausalLM> model, KvCache cache,
                             const ExecutorOptions& options)
    : model_(std::move(model)), cache_(std::move(cache)), options_(options) {}

ModelExecutor::~ModelExecutor() {
  if (device_ < 0) return;
  // Graphs and buffers go before the stream they were used on.
  DeviceScope scope(device_, stream_.get());
  if (absl::Status s = SynchronizeCurrentStream(); !s.ok()) {
    spdlog::warn("ModelExecutor: {}", s.message());
  }
  graphs_.clear();
}

absl::StatusOr<std::unique_ptr<ModelExecutor>> ModelExecutor::Create(
    std::unique_ptr<LlamaForCausalLM> model, KvCache cache, const ExecutorOptions& options) {
  if (options.max_num_batched_tokens < 1 || options.max_num_seqs < 1) {
    return absl::InvalidArgumentError(
        "ModelExecutor: max_num_batched_tokens and max_num_seqs must be positive");
  }
  std::unique_ptr<ModelExecutor> e(new ModelExecutor(std::move(model), std::move(cache), options));
  if (e->model_->device() == Device::kCuda) RETURN_IF_ERROR(e->InitDevice());
  return e;
}

absl::Status ModelExecutor::InitDevice() {
  ASSIGN_OR_RETURN(device_, CurrentCudaDevice());
  ASSIGN_OR_RETURN(stream_, CudaStream::Create());
  ASSIGN_OR_RETURN(inputs_consumed_, CudaEvent::Create());
  DeviceScope scope(device_, stream_.get());
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

absl::Status ModelExecutor::ReserveInputs(int64_t tokens, int64_t seqs, int64_t width) {
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

ModelInput ModelExecutor::DeviceViews(int64_t n, int64_t b, int64_t width, int64_t m,
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

absl::StatusOr<ModelInput> ModelExecutor::Upload(int64_t used_int32s, ModelInput views) {
  Tensor dst = dev_inputs_.Slice(0, used_int32s);
  RETURN_IF_ERROR(dst.CopyFromAsync(host_inputs_.Slice(0, used_int32s)));
  RETURN_IF_ERROR(inputs_consumed_.Record());
  return views;
}

absl::StatusOr<ModelInput> ModelExecutor::StageDense(const v1::StepPlan& plan) {
  const int64_t n = plan.token_ids_size();
  const int64_t b = plan.seq_lens_size();
  const int64_t w = plan.max_blocks_per_seq();
  const int64_t m = plan.logits_indices_size();
  if (plan.positions_size() != n || plan.slot_mapping_size() != n ||
      plan.query_start_loc_size() != b + 1 || plan.block_tables_size() != b * w || m > n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step plan ", plan.step(), " is inconsistent: ", n, " tokens, ", plan.positions_size(),
        " positions, ", plan.slot_mapping_size(), " slots, ", b, " sequences, ",
        plan.query_start_loc_size(), " query starts, ", plan.block_tables_size(),
        " block-table entries for width ", w, ", ", m, " logits rows"));
  }
  RETURN_IF_ERROR(ReserveInputs(n, b, w));
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

absl::StatusOr<ModelInput> ModelExecutor::StagePaddedDecode(const v1::StepPlan* plan, int bucket) {
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

bool ModelExecutor::IsGraphableDecode(const v1::StepPlan& plan) const {
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

absl::Status ModelExecutor::CaptureBucket(int bucket) {
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

int ModelExecutor::BlockSize() const {
  return options_.block_size > 0 ? options_.block_size : cache_.shape().block_size;
}

int64_t ModelExecutor::ProfileBlocks() const {
  int64_t blocks = 0;
  SyntheticPrefillPlan(options_.max_num_batched_tokens, options_.max_num_seqs, BlockSize(),
                       model_->config().vocab_size, &blocks);
  return blocks + 1;  // block 0 stays for the padded decode rows
}

absl::Status ModelExecutor::ProfileRun() {
  int64_t blocks = 0;
  v1::StepPlan plan = SyntheticPrefillPlan(options_.max_num_batched_tokens, options_.max_num_seqs,
                                           BlockSize(), model_->config().vocab_size, &blocks);
  if (blocks + 1 > cache_.shape().num_blocks) {
    return absl::FailedPreconditionError(
        absl::StrCat("ProfileRun: the KV cache has ", cache_.shape().num_blocks,
                     " blocks; the profiling batch needs ", blocks + 1));
  }
  // Blocks 1.. for the prefill; block 0 is the padded rows' context.
  for (int64_t& slot : *plan.mutable_slot_mapping()) slot += BlockSize();
  for (int32_t& block : *plan.mutable_block_tables()) ++block;
  RETURN_IF_ERROR(Forward(plan));
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  std::vector<SamplingRow> rows(plan.logits_indices_size());
  for (SamplingRow& row : rows) row.params = &greedy;
  Sampler sampler;
  RETURN_IF_ERROR(Sample(rows, sampler).status());
  if (device_ >= 0) {
    DeviceScope scope(device_, stream_.get());
    ASSIGN_OR_RETURN(const ModelInput in, StagePaddedDecode(nullptr, options_.max_num_seqs));
    Tensor logits;
    RETURN_IF_ERROR(model_->Forward(in, cache_, logits));
  }
  return Synchronize();
}

absl::Status ModelExecutor::CaptureDecodeGraphs() {
  if (device_ < 0 || !graphs_enabled_) return absl::OkStatus();
  DeviceScope scope(device_, stream_.get());
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

void ModelExecutor::SetCache(KvCache cache) {
  if (device_ >= 0) {
    DeviceScope scope(device_, stream_.get());
    if (absl::Status s = SynchronizeCurrentStream(); !s.ok()) {
      spdlog::warn("ModelExecutor::SetCache: {}", s.message());
    }
  }
  graphs_.clear();
  cache_ = std::move(cache);
}

absl::Status ModelExecutor::Synchronize() {
  if (device_ < 0) return absl::OkStatus();
  DeviceScope scope(device_, stream_.get());
  return SynchronizeCurrentStream();
}

absl::Status ModelExecutor::Forward(const v1::StepPlan& plan) {
  if (device_ < 0) return ForwardCpu(plan);
  return ForwardCuda(plan);
}

absl::Status ModelExecutor::ForwardCpu(const v1::StepPlan& plan) {
  const ModelInput input = ModelInputFromPlan(plan);
  const int64_t rows = plan.logits_indices_size();
  const int64_t vocab = model_->config().vocab_size;
  if (logits_external_ || logits_.ndim() != 2 || logits_.dim(0) != rows ||
      logits_.dim(1) != vocab) {
    logits_ = Tensor::Empty(DType::kFloat32, {rows, vocab});
    logits_external_ = false;
  }
  logits_rows_ = rows;
  return model_->Forward(input, cache_, logits_);
}

absl::Status ModelExecutor::ForwardCuda(const v1::StepPlan& plan) {
  DeviceScope scope(device_, stream_.get());
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

absl::StatusOr<std::vector<SampleResult>> ModelExecutor::Sample(std::span<const SamplingRow> rows,
                                                                Sampler& cpu_sampler) {
  if (static_cast<int64_t>(rows.size()) != logits_rows_) {
    return absl::InvalidArgumentError(absl::StrCat("Sample: ", rows.size(), " sampling rows for ",
                                                   logits_rows_,
                                                   " logits rows of the last forward pass"));
  }
  if (device_ >= 0) return SampleCuda(rows, cpu_sampler);
  return cpu_sampler.Sample(logits_.data_as<float>(), model_->config().vocab_size, rows);
}

absl::StatusOr<std::vector<SampleResult>> ModelExecutor::SampleCuda(
    std::span<const SamplingRow> rows, Sampler& cpu_sampler) {
  const int64_t m = static_cast<int64_t>(rows.size());
  std::vector<SampleResult> results(m);
  if (m == 0) return results;
  DeviceScope scope(device_, stream_.get());
  const int64_t vocab = model_->config().vocab_size;
  if (m > sample_capacity_) {
    RETURN_IF_ERROR(SynchronizeCurrentStream());
    const int64_t cap = std::max<int64_t>(m, options_.max_num_seqs);
    host_sample_in_ = Tensor::EmptyPinned(DType::kInt32, {8 * cap});
    host_sample_out_ = Tensor::EmptyPinned(DType::kInt32, {2 * cap});
    ASSIGN_OR_RETURN(dev_sample_in_, Tensor::TryEmpty(DType::kInt32, {8 * cap}, Device::kCuda));
    ASSIGN_OR_RETURN(dev_sample_out_, Tensor::TryEmpty(DType::kInt32, {2 * cap}, Device::kCuda));
    sample_capacity_ = cap;
  }
  const int64_t cap = sample_capacity_;
  // Host layout (int32 units): seed int64 [cap] | step int64 [cap] |
  // temperature [cap] | top_k [cap] | top_p [cap] | min_p [cap].
  int32_t* h = host_sample_in_.data_as<int32_t>();
  auto* seed = reinterpret_cast<int64_t*>(h);
  auto* step = reinterpret_cast<int64_t*>(h + 2 * cap);
  auto* temperature = reinterpret_cast<float*>(h + 4 * cap);
  int32_t* top_k = h + 5 * cap;
  auto* top_p = reinterpret_cast<float*>(h + 6 * cap);
  auto* min_p = reinterpret_cast<float*>(h + 7 * cap);
  std::vector<int64_t> cpu_rows;
  for (int64_t r = 0; r < m; ++r) {
    const SamplingParams& p = *rows[r].params;
    seed[r] = static_cast<int64_t>(rows[r].seed);
    step[r] = rows[r].step;
    temperature[r] = p.temperature;
    top_k[r] = p.top_k;
    top_p[r] = p.top_p;
    min_p[r] = p.min_p;
    if (!GpuSamplable(p)) cpu_rows.push_back(r);
  }
  RETURN_IF_ERROR(dev_sample_in_.CopyFromAsync(host_sample_in_));
  int32_t* d = dev_sample_in_.data_as<int32_t>();
  auto dview = [&](int32_t* base, int64_t offset, DType dtype) {
    return Tensor::View(base + offset, dtype, {m}, Device::kCuda);
  };
  ops::SamplingTensors params;
  params.seed = dview(d, 0, DType::kInt64);
  params.step = dview(d, 2 * cap, DType::kInt64);
  params.temperature = dview(d, 4 * cap, DType::kFloat32);
  params.top_k = dview(d, 5 * cap, DType::kInt32);
  params.top_p = dview(d, 6 * cap, DType::kFloat32);
  params.min_p = dview(d, 7 * cap, DType::kFloat32);
  int32_t* out = dev_sample_out_.data_as<int32_t>();
  Tensor tokens = dview(out, 0, DType::kInt32);
  Tensor logprobs = dview(out, cap, DType::kFloat32);
  RETURN_IF_ERROR(ops::Sample(logits_, params, tokens, logprobs));
  RETURN_IF_ERROR(host_sample_out_.CopyFromAsync(dev_sample_out_));

  // Rows the GPU sampler cannot do: their logits go to the host.
  Tensor host_logits;
  if (!cpu_rows.empty()) {
    const int64_t k = static_cast<int64_t>(cpu_rows.size());
    host_logits = Tensor::Empty(DType::kFloat32, {k, vocab});
    Tensor staged = Tensor::Empty(logits_.dtype(), {1, vocab});
    for (int64_t j = 0; j < k; ++j) {
      RETURN_IF_ERROR(staged.CopyFrom(logits_.Slice(cpu_rows[j], cpu_rows[j] + 1)));
      ConvertToFloat32(staged.data(), staged.dtype(), vocab,
                       host_logits.data_as<float>() + j * vocab);
    }
  }
  RETURN_IF_ERROR(SynchronizeCurrentStream());
  const int32_t* host_tokens = host_sample_out_.data_as<int32_t>();
  const auto* host_logprobs = reinterpret_cast<const float*>(host_tokens + cap);
  for (int64_t r = 0; r < m; ++r) {
    results[r].token = host_tokens[r];
    results[r].logprob = host_logprobs[r];
  }
  if (!cpu_rows.empty()) {
    std::vector<SamplingRow> subset;
    subset.reserve(cpu_rows.size());
    for (int64_t r : cpu_rows) subset.push_back(rows[r]);
    std::vector<SampleResult> cpu = cpu_sampler.Sample(host_logits.data_as<float>(), vocab, subset);
    for (size_t j = 0; j < cpu_rows.size(); ++j) results[cpu_rows[j]] = std::move(cpu[j]);
  }
  return results;
}

absl::Status ModelExecutor::Execute(const v1::StepPlan& plan, Tensor& logits) {
  if (device_ < 0) {
    // Into the caller's tensor, which later Forwards leave alone.
    const int64_t rows = plan.logits_indices_size();
    const int64_t vocab = model_->config().vocab_size;
    if (logits.ndim() != 2 || logits.dim(0) != rows || logits.dim(1) != vocab) {
      logits = Tensor::Empty(DType::kFloat32, {rows, vocab});
    }
    RETURN_IF_ERROR(model_->Forward(ModelInputFromPlan(plan), cache_, logits));
    logits_ = logits;  // for Sample; the next Forward allocates its own
    logits_external_ = true;
    logits_rows_ = rows;
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(Forward(plan));
  DeviceScope scope(device_, stream_.get());
  const int64_t vocab = model_->config().vocab_size;
  logits = Tensor::Empty(DType::kFloat32, {logits_rows_, vocab});
  if (logits_rows_ == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(Tensor host, logits_.To(Device::kCpu));
  ConvertToFloat32(host.data(), host.dtype(), host.numel(), logits.data_as<float>());
  return absl::OkStatus();
}

}  // namespace tessera
