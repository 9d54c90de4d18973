#include "worker/engine/step_plan.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "worker/exec/cuda_staging.h"

namespace tessera {
namespace {

template <typename T>
Tensor ViewOf(const google::protobuf::RepeatedField<T>& field, DType dtype,
              std::vector<int64_t> shape) {
  return Tensor::View(const_cast<T*>(field.data()), dtype, std::move(shape));
}

int BlocksFor(int tokens, int block_size) { return (tokens + block_size - 1) / block_size; }

}  // namespace

void StepPlanBuilder::Begin(int64_t step, int num_seqs, int64_t total_tokens, int max_blocks,
                            int max_query_len, int max_seq_len) {
  plan_->Clear();
  plan_->set_kind(v1::StepPlan::KIND_FORWARD);
  plan_->set_step(step);
  plan_->mutable_token_ids()->Reserve(static_cast<int>(total_tokens));
  plan_->mutable_positions()->Reserve(static_cast<int>(total_tokens));
  plan_->mutable_slot_mapping()->Reserve(static_cast<int>(total_tokens));
  plan_->mutable_query_start_loc()->Reserve(num_seqs + 1);
  plan_->mutable_seq_lens()->Reserve(num_seqs);
  plan_->set_max_blocks_per_seq(max_blocks);
  plan_->set_max_query_len(max_query_len);
  plan_->set_max_seq_len(max_seq_len);
  plan_->mutable_block_tables()->Resize(num_seqs * max_blocks, 0);
  plan_->add_query_start_loc(0);
  max_blocks_ = max_blocks;
  row_ = 0;
  seq_ = 0;
}

void StepPlanBuilder::AddSequence(std::span<const int32_t> tokens, int start,
                                  std::span<const int32_t> block_table, int num_samples) {
  const int n = static_cast<int>(tokens.size());
  for (int i = 0; i < n; ++i) {
    const int pos = start + i;
    plan_->add_token_ids(tokens[i]);
    plan_->add_positions(pos);
    plan_->add_slot_mapping(static_cast<int64_t>(block_table[pos / block_size_]) * block_size_ +
                            pos % block_size_);
  }
  row_ += n;
  plan_->add_query_start_loc(row_);
  plan_->add_seq_lens(start + n);
  const int used = BlocksFor(start + n, block_size_);
  std::copy(block_table.begin(), block_table.begin() + used,
            plan_->mutable_block_tables()->begin() + seq_ * max_blocks_);
  for (int i = 0; i < num_samples; ++i) plan_->add_logits_indices(row_ - 1);
  ++seq_;
}

void StepPlanBuilder::AddCopy(int32_t src, int32_t dst) {
  plan_->add_copy_src(src);
  plan_->add_copy_dst(dst);
}

void BuildStepPlan(const SchedulerOutput& out, int block_size, int64_t step, v1::StepPlan* plan) {
  int max_blocks = 0;
  int max_query = 0;
  int max_seq = 0;
  for (const ScheduledSeq& s : out.seqs) {
    const int seq_len = s.seq->num_computed_tokens() + s.num_tokens;
    max_blocks = std::max(max_blocks, BlocksFor(seq_len, block_size));
    max_query = std::max(max_query, s.num_tokens);
    max_seq = std::max(max_seq, seq_len);
  }
  StepPlanBuilder builder(plan, block_size);
  builder.Begin(step, static_cast<int>(out.seqs.size()), out.total_tokens, max_blocks, max_query,
                max_seq);
  for (const ScheduledSeq& s : out.seqs) {
    const Sequence& seq = *s.seq;
    const int start = seq.num_computed_tokens();
    const auto tokens = seq.all_tokens();
    const auto& table = seq.block_table();
    builder.AddSequence(std::span<const int32_t>(tokens.data() + start, s.num_tokens), start,
                        std::span<const int32_t>(table.data(), table.size()),
                        s.sample ? 1 + s.forks : 0);
  }
  for (const BlockCopy& c : out.block_copies) builder.AddCopy(c.src, c.dst);
}

v1::StepPlan SyntheticPrefillPlan(int num_tokens, int num_seqs, int block_size, int32_t vocab,
                                  int64_t* blocks_used) {
  num_seqs = std::max(1, std::min(num_seqs, num_tokens));
  std::vector<int> lens(num_seqs, num_tokens / num_seqs);
  for (int b = 0; b < num_tokens % num_seqs; ++b) ++lens[b];
  int max_blocks = 0;
  for (int len : lens) max_blocks = std::max(max_blocks, BlocksFor(len, block_size));
  v1::StepPlan plan;
  StepPlanBuilder builder(&plan, block_size);
  builder.Begin(/*step=*/0, num_seqs, num_tokens, max_blocks, lens[0], lens[0]);
  int32_t next_block = 0;
  int row = 0;
  for (int len : lens) {
    std::vector<int32_t> tokens(len);
    for (int i = 0; i < len; ++i) tokens[i] = static_cast<int32_t>((row + i) % vocab);
    std::vector<int32_t> table(BlocksFor(len, block_size));
    std::iota(table.begin(), table.end(), next_block);
    builder.AddSequence(tokens, /*start=*/0, table, /*num_samples=*/1);
    next_block += static_cast<int32_t>(table.size());
    row += len;
  }
  if (blocks_used != nullptr) *blocks_used = next_block;
  return plan;
}

ModelInput ModelInputFromPlan(const v1::StepPlan& plan) {
  ModelInput in;
  const int64_t n = plan.token_ids_size();
  const int64_t b = plan.seq_lens_size();
  in.token_ids = ViewOf(plan.token_ids(), DType::kInt32, {n});
  in.positions = ViewOf(plan.positions(), DType::kInt32, {n});
  in.slot_mapping = ViewOf(plan.slot_mapping(), DType::kInt64, {n});
  in.attn.query_start_loc = ViewOf(plan.query_start_loc(), DType::kInt32, {b + 1});
  in.attn.seq_lens = ViewOf(plan.seq_lens(), DType::kInt32, {b});
  in.attn.block_tables = ViewOf(plan.block_tables(), DType::kInt32, {b, plan.max_blocks_per_seq()});
  in.attn.max_query_len = plan.max_query_len();
  in.attn.max_seq_len = plan.max_seq_len();
  in.attn.num_decodes = CountDecodes(
      std::span<const int32_t>(plan.query_start_loc().data(), plan.query_start_loc_size()), n);
  in.logits_indices = ViewOf(plan.logits_indices(), DType::kInt32, {plan.logits_indices_size()});
  return in;
}

}  // namespace tessera
