#include "worker/engine/step_plan.h"

#include <algorithm>

namespace tessera {
namespace {

template <typename T>
Tensor ViewOf(const google::protobuf::RepeatedField<T>& field, DType dtype,
              std::vector<int64_t> shape) {
  return Tensor::View(const_cast<T*>(field.data()), dtype, std::move(shape));
}

}  // namespace

void BuildStepPlan(const SchedulerOutput& out, int block_size, int64_t step, v1::StepPlan* plan) {
  plan->Clear();
  plan->set_kind(v1::StepPlan::KIND_FORWARD);
  plan->set_step(step);
  const int num_seqs = static_cast<int>(out.seqs.size());
  plan->mutable_token_ids()->Reserve(out.total_tokens);
  plan->mutable_positions()->Reserve(out.total_tokens);
  plan->mutable_slot_mapping()->Reserve(out.total_tokens);
  plan->mutable_query_start_loc()->Reserve(num_seqs + 1);
  plan->mutable_seq_lens()->Reserve(num_seqs);

  int max_blocks = 0;
  int max_query = 0;
  int max_seq = 0;
  for (const ScheduledSeq& s : out.seqs) {
    const int seq_len = s.seq->num_computed_tokens() + s.num_tokens;
    max_blocks = std::max(max_blocks, (seq_len + block_size - 1) / block_size);
    max_query = std::max(max_query, s.num_tokens);
    max_seq = std::max(max_seq, seq_len);
  }
  plan->set_max_blocks_per_seq(max_blocks);
  plan->set_max_query_len(max_query);
  plan->set_max_seq_len(max_seq);
  plan->mutable_block_tables()->Resize(num_seqs * max_blocks, 0);

  int row = 0;
  plan->add_query_start_loc(0);
  for (int b = 0; b < num_seqs; ++b) {
    const ScheduledSeq& s = out.seqs[b];
    const Sequence& seq = *s.seq;
    const int start = seq.num_computed_tokens();
    const int seq_len = start + s.num_tokens;
    const auto tokens = seq.all_tokens();
    const auto& table = seq.block_table();
    for (int pos = start; pos < seq_len; ++pos) {
      plan->add_token_ids(tokens[pos]);
      plan->add_positions(pos);
      plan->add_slot_mapping(static_cast<int64_t>(table[pos / block_size]) * block_size +
                             pos % block_size);
    }
    row += s.num_tokens;
    plan->add_query_start_loc(row);
    plan->add_seq_lens(seq_len);
    const int used = (seq_len + block_size - 1) / block_size;
    std::copy(table.begin(), table.begin() + used,
              plan->mutable_block_tables()->begin() + b * max_blocks);
    if (s.sample) plan->add_logits_indices(row - 1);
  }
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
  in.logits_indices = ViewOf(plan.logits_indices(), DType::kInt32, {plan.logits_indices_size()});
  return in;
}

}  // namespace tessera
