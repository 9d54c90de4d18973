#include "bench/gpu/step_plans.h"

#include <cstdint>

namespace tessera::gpu_bench {

// A prefill step of `seqs` sequences [first, first + seqs) of `len` tokens
// each, sequence s in blocks [s * bps, (s + 1) * bps).
v1::StepPlan PrefillPlan(int first, int seqs, int len, int block_size, int bps, int vocab,
                         std::mt19937& rng) {
  v1::StepPlan p;
  p.set_kind(v1::StepPlan::KIND_FORWARD);
  const int blocks = (len + block_size - 1) / block_size;
  p.set_max_blocks_per_seq(blocks);
  p.set_max_query_len(len);
  p.set_max_seq_len(len);
  p.add_query_start_loc(0);
  std::uniform_int_distribution<int> tok(3, vocab - 1);
  for (int s = first; s < first + seqs; ++s) {
    for (int pos = 0; pos < len; ++pos) {
      p.add_token_ids(tok(rng));
      p.add_positions(pos);
      p.add_slot_mapping(int64_t{s} * bps * block_size + pos);
    }
    p.add_query_start_loc(p.token_ids_size());
    p.add_seq_lens(len);
    for (int j = 0; j < blocks; ++j) p.add_block_tables(s * bps + j);
    p.add_logits_indices(p.token_ids_size() - 1);
  }
  return p;
}

// Decode step `step` of sequences [0, batch): the token at position
// context + step.
v1::StepPlan DecodePlan(int batch, int context, int step, int block_size, int bps, int vocab,
                        std::mt19937& rng) {
  v1::StepPlan p;
  p.set_kind(v1::StepPlan::KIND_FORWARD);
  const int pos = context + step;
  const int blocks = pos / block_size + 1;
  p.set_max_blocks_per_seq(blocks);
  p.set_max_query_len(1);
  p.set_max_seq_len(pos + 1);
  p.add_query_start_loc(0);
  std::uniform_int_distribution<int> tok(3, vocab - 1);
  for (int s = 0; s < batch; ++s) {
    p.add_token_ids(tok(rng));
    p.add_positions(pos);
    p.add_slot_mapping(int64_t{s} * bps * block_size + pos);
    p.add_query_start_loc(s + 1);
    p.add_seq_lens(pos + 1);
    for (int j = 0; j < blocks; ++j) p.add_block_tables(s * bps + j);
    p.add_logits_indices(s);
  }
  return p;
}

}  // namespace tessera::gpu_bench
