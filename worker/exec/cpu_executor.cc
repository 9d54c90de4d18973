#include "worker/exec/cpu_executor.h"

#include "common/status_macros.h"
#include "worker/engine/step_plan.h"

namespace tessera {

absl::Status CpuModelExecutor::Forward(const v1::StepPlan& plan) {
  RETURN_IF_ERROR(RunBlockCopies(plan));
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

absl::Status CpuModelExecutor::Execute(const v1::StepPlan& plan, Tensor& logits) {
  // Into the caller's tensor, which later Forwards leave alone.
  const int64_t rows = plan.logits_indices_size();
  const int64_t vocab = model_->config().vocab_size;
  if (logits.ndim() != 2 || logits.dim(0) != rows || logits.dim(1) != vocab) {
    logits = Tensor::Empty(DType::kFloat32, {rows, vocab});
  }
  RETURN_IF_ERROR(RunBlockCopies(plan));
  RETURN_IF_ERROR(model_->Forward(ModelInputFromPlan(plan), cache_, logits));
  logits_ = logits;  // for Sample; the next Forward allocates its own
  logits_external_ = true;
  logits_rows_ = rows;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SampleResult>> CpuModelExecutor::SampleRows(
    std::span<const SamplingRow> rows, Sampler& cpu_sampler) {
  return cpu_sampler.Sample(logits_.data_as<float>(), model_->config().vocab_size, rows);
}

}  // namespace tessera
