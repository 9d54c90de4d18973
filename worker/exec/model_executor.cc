#include "worker/exec/model_executor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/engine/step_plan.h"
#include "worker/exec/cpu_executor.h"
#include "worker/exec/cuda_executor.h"

namespace tessera {

absl::StatusOr<std::unique_ptr<ModelExecutor>> ModelExecutor::Create(
    std::unique_ptr<LlamaForCausalLM> model, KvCache cache, const ExecutorOptions& options) {
  if (options.max_num_batched_tokens < 1 || options.max_num_seqs < 1) {
    return absl::InvalidArgumentError(
        "ModelExecutor: max_num_batched_tokens and max_num_seqs must be positive");
  }
  switch (model->device()) {
    case Device::kCpu:
      return std::unique_ptr<ModelExecutor>(
          new CpuModelExecutor(std::move(model), std::move(cache), options));
    case Device::kCuda:
      return CudaModelExecutor::Create(std::move(model), std::move(cache), options);
  }
  return absl::InvalidArgumentError("ModelExecutor: unknown device");
}

absl::StatusOr<std::vector<SampleResult>> ModelExecutor::Sample(std::span<const SamplingRow> rows,
                                                                Sampler& cpu_sampler) {
  if (static_cast<int64_t>(rows.size()) != logits_rows_) {
    return absl::InvalidArgumentError(absl::StrCat("Sample: ", rows.size(), " sampling rows for ",
                                                   logits_rows_,
                                                   " logits rows of the last forward pass"));
  }
  return SampleRows(rows, cpu_sampler);
}

const std::vector<int>& ModelExecutor::graph_buckets() const {
  static const std::vector<int> kNone;
  return kNone;
}

absl::Status ModelExecutor::RunBlockCopies(const v1::StepPlan& plan) {
  const int num = plan.copy_src_size();
  if (num == 0 && plan.copy_dst_size() == 0) return absl::OkStatus();
  if (plan.copy_dst_size() != num) {
    return absl::InvalidArgumentError(absl::StrCat("step plan ", plan.step(), ": ", num,
                                                   " copy sources but ", plan.copy_dst_size(),
                                                   " copy destinations"));
  }
  const int64_t blocks = cache_.shape().num_blocks;
  for (int i = 0; i < num; ++i) {
    const int32_t src = plan.copy_src(i);
    const int32_t dst = plan.copy_dst(i);
    if (src < 0 || src >= blocks || dst < 0 || dst >= blocks) {
      return absl::InvalidArgumentError(absl::StrCat("step plan ", plan.step(), ": block copy ",
                                                     src, " -> ", dst, " outside the cache's ",
                                                     blocks, " blocks"));
    }
    for (int layer = 0; layer < cache_.shape().num_layers; ++layer) {
      for (Tensor* side : {&cache_.k(layer), &cache_.v(layer)}) {
        RETURN_IF_ERROR(side->Slice(dst, dst + 1).CopyFromAsync(side->Slice(src, src + 1)));
      }
    }
  }
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
  RETURN_IF_ERROR(ProfileDecode());
  return Synchronize();
}

}  // namespace tessera
