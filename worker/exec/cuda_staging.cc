#include "worker/exec/cuda_staging.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "worker/device/cuda_graph.h"

namespace tessera {

InputLayout InputLayout::For(int64_t tokens, int64_t seqs, int64_t width) {
  InputLayout l;
  l.tokens = tokens;
  l.seqs = seqs;
  l.width = width;
  l.slot = 0;
  l.token_ids = l.slot + 2 * l.tokens;
  l.positions = l.token_ids + l.tokens;
  l.logits_indices = l.positions + l.tokens;
  l.qsl = l.logits_indices + l.tokens;
  l.seq_lens = l.qsl + l.seqs + 1;
  l.block_tables = l.seq_lens + l.seqs;
  l.total = l.block_tables + l.seqs * l.width;
  return l;
}

std::optional<DecodeGraphKey> ChooseDecodeGraph(const v1::StepPlan& plan,
                                                const DecodeGraphShapes& shapes) {
  const int b = plan.seq_lens_size();
  if (shapes.batches.empty() || shapes.contexts.empty() || shapes.block_size < 1 || b == 0 ||
      b > shapes.batches.back()) {
    return std::nullopt;
  }
  if (plan.token_ids_size() != b || plan.positions_size() != b || plan.slot_mapping_size() != b ||
      plan.logits_indices_size() != b || plan.query_start_loc_size() != b + 1 ||
      plan.max_query_len() != 1 || plan.block_tables_size() != b * plan.max_blocks_per_seq()) {
    return std::nullopt;
  }
  int64_t longest = 1;
  for (int i = 0; i < b; ++i) {
    if (plan.logits_indices(i) != i || plan.query_start_loc(i + 1) != i + 1) return std::nullopt;
    longest = std::max<int64_t>(longest, plan.seq_lens(i));
  }
  const int64_t blocks = (longest + shapes.block_size - 1) / shapes.block_size;
  if (plan.query_start_loc(0) != 0 || blocks > shapes.contexts.back()) return std::nullopt;
  return DecodeGraphKey{BucketFor(shapes.batches, b),
                        BucketFor(shapes.contexts, static_cast<int>(blocks))};
}

absl::Status CheckPlanShape(const v1::StepPlan& plan) {
  const int64_t n = plan.token_ids_size();
  const int64_t b = plan.seq_lens_size();
  const int64_t w = plan.max_blocks_per_seq();
  if (plan.positions_size() != n || plan.slot_mapping_size() != n ||
      plan.query_start_loc_size() != b + 1 || w < 0 || plan.block_tables_size() != b * w) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step plan ", plan.step(), " is inconsistent: ", n, " tokens, ", plan.positions_size(),
        " positions, ", plan.slot_mapping_size(), " slots, ", b, " sequences, ",
        plan.query_start_loc_size(), " query starts, ", plan.block_tables_size(),
        " block-table entries for width ", w, ", ", plan.logits_indices_size(), " logits rows"));
  }
  return absl::OkStatus();
}

StagedBatch PackDense(const v1::StepPlan& plan, const InputLayout& layout, int32_t* host) {
  StagedBatch s;
  s.tokens = plan.token_ids_size();
  s.seqs = plan.seq_lens_size();
  s.width = plan.max_blocks_per_seq();
  s.logits_rows = plan.logits_indices_size();  // may exceed n: a row sampled n times
  s.max_query_len = plan.max_query_len();
  s.max_seq_len = plan.max_seq_len();
  s.num_decodes = CountDecodes(
      std::span<const int32_t>(plan.query_start_loc().data(), plan.query_start_loc_size()),
      s.tokens);
  auto put = [&](int64_t offset, const void* src, int64_t bytes) {
    if (bytes > 0) std::memcpy(host + offset, src, bytes);
  };
  put(layout.slot, plan.slot_mapping().data(), s.tokens * 8);
  put(layout.token_ids, plan.token_ids().data(), s.tokens * 4);
  put(layout.positions, plan.positions().data(), s.tokens * 4);
  put(layout.logits_indices, plan.logits_indices().data(), s.logits_rows * 4);
  put(layout.qsl, plan.query_start_loc().data(), (s.seqs + 1) * 4);
  put(layout.seq_lens, plan.seq_lens().data(), s.seqs * 4);
  put(layout.block_tables, plan.block_tables().data(), s.seqs * s.width * 4);
  s.used_int32s = layout.block_tables + s.seqs * s.width;
  return s;
}

StagedBatch PackPaddedDecode(const v1::StepPlan* plan, DecodeGraphKey key, int block_size,
                             const InputLayout& layout, int32_t* host) {
  const int64_t real = plan == nullptr ? 0 : plan->seq_lens_size();
  const int64_t rows = key.batch;
  const int64_t w = key.context_blocks;
  auto* slots = reinterpret_cast<int64_t*>(host + layout.slot);
  int32_t* tokens = host + layout.token_ids;
  int32_t* positions = host + layout.positions;
  int32_t* indices = host + layout.logits_indices;
  int32_t* qsl = host + layout.qsl;
  int32_t* seq_lens = host + layout.seq_lens;
  int32_t* tables = host + layout.block_tables;
  for (int64_t i = 0; i < rows; ++i) {
    const bool live = i < real;
    slots[i] = live ? plan->slot_mapping(i) : -1;  // -1: store nothing
    tokens[i] = live ? plan->token_ids(i) : 0;
    positions[i] = live ? plan->positions(i) : 0;
    seq_lens[i] = live ? plan->seq_lens(i) : 1;  // a one-token context in block 0
    indices[i] = static_cast<int32_t>(i);
    qsl[i] = static_cast<int32_t>(i);
  }
  qsl[rows] = static_cast<int32_t>(rows);
  std::memset(tables, 0, sizeof(int32_t) * rows * w);
  if (real > 0) {
    const int64_t pw = plan->max_blocks_per_seq();
    const int64_t cols = std::min(pw, w);
    for (int64_t i = 0; i < real; ++i) {
      std::memcpy(tables + i * w, plan->block_tables().data() + i * pw, cols * 4);
    }
  }
  StagedBatch s;
  s.tokens = s.seqs = s.logits_rows = rows;
  s.width = w;
  s.max_query_len = 1;
  s.max_seq_len = static_cast<int>(w * block_size);
  s.num_decodes = static_cast<int>(rows);
  s.used_int32s = layout.block_tables + rows * w;
  return s;
}

int CountDecodes(std::span<const int32_t> query_start_loc, int64_t rows) {
  if (query_start_loc.empty() || query_start_loc.back() != rows) return -1;
  int decodes = 0;
  for (size_t i = 1; i < query_start_loc.size(); ++i) {
    decodes += query_start_loc[i] - query_start_loc[i - 1] == 1;
  }
  return decodes;
}

bool GpuSamplable(const SamplingParams& p) {
  return p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f &&
         p.frequency_penalty == 0.0f && p.logprobs == 0;
}

std::vector<int32_t> CpuSampledRows(std::span<const SamplingRow> rows) {
  std::vector<int32_t> cpu;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (!GpuSamplable(*rows[r].params)) cpu.push_back(static_cast<int32_t>(r));
  }
  return cpu;
}

}  // namespace tessera
