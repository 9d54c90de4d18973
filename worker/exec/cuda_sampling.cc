// CudaModelExecutor's sampling path: GPU sampling (ops::Sample) for the rows
// it handles, the CPU Sampler for the others (CpuSampledRows), on their
// logits gathered on the device and copied to pinned host memory at once.
#include <algorithm>
#include <utility>

#include "common/status_macros.h"
#include "worker/exec/cuda_executor.h"

namespace tessera {

absl::Status CudaModelExecutor::ReserveCpuRows(int64_t rows) {
  if (rows <= cpu_rows_capacity_) return absl::OkStatus();
  rows = std::max<int64_t>(rows, options_.max_num_seqs);  // grow once, not row by row
  const int64_t vocab = model_->config().vocab_size;
  const DType dtype = model_->logits_dtype();
  RETURN_IF_ERROR(SynchronizeCurrentStream());  // the old buffers may still be in use
  dev_cpu_rows_ = Tensor();
  cpu_rows_capacity_ = 0;
  ASSIGN_OR_RETURN(dev_cpu_rows_, Tensor::TryEmpty(dtype, {rows, vocab}, Device::kCuda));
  host_cpu_rows_ = Tensor::EmptyPinned(dtype, {rows, vocab});
  cpu_rows_capacity_ = rows;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SampleResult>> CudaModelExecutor::SampleRows(
    std::span<const SamplingRow> rows, Sampler& cpu_sampler) {
  const int64_t m = static_cast<int64_t>(rows.size());
  std::vector<SampleResult> results(m);
  if (m == 0) return results;
  Scope scope(device_, stream_.get());
  const int64_t vocab = model_->config().vocab_size;
  if (m > sample_capacity_) {
    RETURN_IF_ERROR(SynchronizeCurrentStream());
    const int64_t cap = std::max<int64_t>(m, options_.max_num_seqs);
    host_sample_in_ = Tensor::EmptyPinned(DType::kInt32, {9 * cap});
    host_sample_out_ = Tensor::EmptyPinned(DType::kInt32, {2 * cap});
    ASSIGN_OR_RETURN(dev_sample_in_, Tensor::TryEmpty(DType::kInt32, {9 * cap}, Device::kCuda));
    ASSIGN_OR_RETURN(dev_sample_out_, Tensor::TryEmpty(DType::kInt32, {2 * cap}, Device::kCuda));
    sample_capacity_ = cap;
  }
  const int64_t cap = sample_capacity_;
  // Host layout (int32 units): seed int64 [cap] | step int64 [cap] |
  // temperature [cap] | top_k [cap] | top_p [cap] | min_p [cap] |
  // the CPU-sampled rows [cap].
  int32_t* h = host_sample_in_.data_as<int32_t>();
  auto* seed = reinterpret_cast<int64_t*>(h);
  auto* step = reinterpret_cast<int64_t*>(h + 2 * cap);
  auto* temperature = reinterpret_cast<float*>(h + 4 * cap);
  int32_t* top_k = h + 5 * cap;
  auto* top_p = reinterpret_cast<float*>(h + 6 * cap);
  auto* min_p = reinterpret_cast<float*>(h + 7 * cap);
  const std::vector<int32_t> cpu_rows = CpuSampledRows(rows);
  const auto k = static_cast<int64_t>(cpu_rows.size());
  std::copy(cpu_rows.begin(), cpu_rows.end(), h + 8 * cap);
  for (int64_t r = 0; r < m; ++r) {
    const SamplingParams& p = *rows[r].params;
    seed[r] = static_cast<int64_t>(rows[r].seed);
    step[r] = rows[r].step;
    temperature[r] = p.temperature;
    top_k[r] = p.top_k;
    top_p[r] = p.top_p;
    min_p[r] = p.min_p;
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

  // Rows the GPU sampler cannot do: their logits are gathered on the device
  // and copied to pinned host memory in one transfer.
  if (k > 0) {
    RETURN_IF_ERROR(ReserveCpuRows(k));
    Tensor gathered = dev_cpu_rows_.Slice(0, k);
    RETURN_IF_ERROR(ops::GatherRows(
        logits_, Tensor::View(d + 8 * cap, DType::kInt32, {k}, Device::kCuda), gathered));
    RETURN_IF_ERROR(host_cpu_rows_.Slice(0, k).CopyFromAsync(gathered));
  }
  RETURN_IF_ERROR(SynchronizeCurrentStream());
  const int32_t* host_tokens = host_sample_out_.data_as<int32_t>();
  const auto* host_logprobs = reinterpret_cast<const float*>(host_tokens + cap);
  for (int64_t r = 0; r < m; ++r) {
    results[r].token = host_tokens[r];
    results[r].logprob = host_logprobs[r];
  }
  if (k > 0) {
    // float32 logits (the usual: see LlamaForCausalLM::logits_dtype) are
    // sampled where they landed; others are widened first.
    Tensor host_logits = host_cpu_rows_.Slice(0, k);
    if (host_logits.dtype() != DType::kFloat32) {
      Tensor widened = Tensor::Empty(DType::kFloat32, {k, vocab});
      ConvertToFloat32(host_logits.data(), host_logits.dtype(), k * vocab,
                       widened.data_as<float>());
      host_logits = widened;
    }
    std::vector<SamplingRow> subset;
    subset.reserve(k);
    for (int32_t r : cpu_rows) subset.push_back(rows[r]);
    std::vector<SampleResult> cpu = cpu_sampler.Sample(host_logits.data_as<float>(), vocab, subset);
    for (int64_t j = 0; j < k; ++j) results[cpu_rows[j]] = std::move(cpu[j]);
  }
  return results;
}

}  // namespace tessera
