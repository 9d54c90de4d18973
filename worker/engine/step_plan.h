// The step plan: what every rank of a replica runs in one engine step. The
// leader builds it from the scheduler's output; it is broadcast as a
// tessera.v1.StepPlan message; each rank views it as a ModelInput.
// StepPlanBuilder is the one way a plan's arrays are filled (the engine's
// plans and the profiling plan alike). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>

#include "tessera/v1/step_plan.pb.h"
#include "worker/engine/scheduler.h"
#include "worker/model/llama.h"

namespace tessera {

// Fills a KIND_FORWARD plan one sequence at a time. Give the batch's shape
// first (Begin: sequences, total tokens, the widest block table, the longest
// query and sequence), then each sequence in order.
class StepPlanBuilder {
 public:
  StepPlanBuilder(v1::StepPlan* plan, int block_size) : plan_(plan), block_size_(block_size) {}

  // Clears the plan and sets its kind, step number and batch shape.
  void Begin(int64_t step, int num_seqs, int64_t total_tokens, int max_blocks, int max_query_len,
             int max_seq_len);
  // Appends a sequence that computes `tokens` at positions start,
  // start + 1, ... (its context so far is `start` tokens), with KV slots
  // from `block_table` (at least ceil((start + tokens.size()) / block_size)
  // blocks; the used ones are copied into the plan's table), and
  // `num_samples` logits rows of its last token (0: a chunk in mid-prompt; 1:
  // the usual; n: the step that forks n choices).
  void AddSequence(std::span<const int32_t> tokens, int start, std::span<const int32_t> block_table,
                   int num_samples);
  // Appends a KV block copy that runs before the forward pass.
  void AddCopy(int32_t src, int32_t dst);

 private:
  v1::StepPlan* plan_;
  int block_size_;
  int max_blocks_ = 0;
  int row_ = 0;
  int seq_ = 0;
};

// Fills `plan` (cleared first) for `out`: per scheduled sequence its tokens
// [num_computed, num_computed + num_tokens), their positions and KV slots,
// its block table, and 1 + forks logits rows when the sequence samples this
// step; then out.block_copies.
void BuildStepPlan(const SchedulerOutput& out, int block_size, int64_t step, v1::StepPlan* plan);

// A prefill batch for profiling: `num_seqs` sequences sharing `num_tokens`
// tokens (as evenly as possible), each starting at position 0, each sampling
// its last token, with blocks [0, *blocks_used) of `block_size` tokens
// assigned in order. Token ids cycle through [0, vocab).
v1::StepPlan SyntheticPrefillPlan(int num_tokens, int num_seqs, int block_size, int32_t vocab,
                                  int64_t* blocks_used);

// Views the plan's arrays as model input tensors (no copy): valid while
// `plan` lives and is not modified.
ModelInput ModelInputFromPlan(const v1::StepPlan& plan);

}  // namespace tessera
