// The CPU executor: the plan's arrays are viewed in place (ModelInputFromPlan),
// logits are host float32 and the worker's Sampler picks the tokens. Not
// thread-safe (see ModelExecutor).
#pragma once

#include <memory>

#include "worker/exec/model_executor.h"

namespace tessera {

class CpuModelExecutor final : public ModelExecutor {
 public:
  // The model must be on the CPU.
  CpuModelExecutor(std::unique_ptr<LlamaForCausalLM> model, KvCache cache,
                   const ExecutorOptions& options = {})
      : ModelExecutor(std::move(model), std::move(cache), options) {}

  absl::Status Forward(const v1::StepPlan& plan) override;
  absl::Status Execute(const v1::StepPlan& plan, Tensor& logits) override;

 private:
  absl::StatusOr<std::vector<SampleResult>> SampleRows(std::span<const SamplingRow> rows,
                                                       Sampler& cpu_sampler) override;

  Tensor logits_;                 // of the last Forward: host float32 [rows, vocab]
  bool logits_external_ = false;  // logits_ is a caller's tensor (Execute)
};

}  // namespace tessera
