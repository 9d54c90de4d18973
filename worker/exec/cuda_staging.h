// The host side of CudaModelExecutor's input staging, as pure functions that
// need no GPU: the layout of the packed input buffer, the decode-graph shape
// a step replays at, packing a plan (as it is, or padded to a graph's shape)
// into the pinned buffer, and which sampled rows go to the CPU sampler.
//
// A decode graph is captured per (batch bucket, context bucket)
// (DecodeGraphKey; buckets in worker/device/cuda_graph.h). Its block table is
// context_blocks wide and its attention's max_seq_len is context_blocks *
// block_size, so the split-K grid and the uploaded table follow the step's
// longest context, not max_model_len.
// Thread-safety: pure functions.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "tessera/v1/step_plan.pb.h"
#include "worker/exec/sampler.h"

namespace tessera {

// Int32 element offsets of the fields in the packed input buffers (host
// pinned and device), for capacities of `tokens` tokens, `seqs` sequences and
// `width` block-table columns. slot_mapping (int64) comes first so it is
// 8-byte aligned; block_tables last, so a step uploads only the prefix it
// uses: its tables are packed `width of the step` wide, not `width` wide.
struct InputLayout {
  int64_t tokens = 0, seqs = 0, width = 0;
  int64_t slot = 0, token_ids = 0, positions = 0, logits_indices = 0, qsl = 0, seq_lens = 0,
          block_tables = 0, total = 0;
  static InputLayout For(int64_t tokens, int64_t seqs, int64_t width);
};

// The shape of a padded decode step a graph is captured at.
struct DecodeGraphKey {
  int batch = 0;           // rows and sequences: a batch bucket
  int context_blocks = 0;  // block-table columns: a context bucket
  friend auto operator<=>(const DecodeGraphKey&, const DecodeGraphKey&) = default;
};

// The buckets graphs may be captured at (ascending, non-empty for graphs).
struct DecodeGraphShapes {
  std::vector<int> batches;   // DecodeGraphBuckets
  std::vector<int> contexts;  // DecodeContextBuckets, in blocks
  int block_size = 0;
};

// The graph shape for `plan` when a graph can run it: a decode step (every
// sequence one query token, one logits row per sequence in order) of at most
// shapes.batches.back() sequences whose longest context fits in
// shapes.contexts.back() blocks; the smallest buckets that hold it. nullopt
// otherwise (the step runs eagerly at its own shape).
std::optional<DecodeGraphKey> ChooseDecodeGraph(const v1::StepPlan& plan,
                                                const DecodeGraphShapes& shapes);

// What a packed step holds, for the device views: n tokens, b sequences,
// tables `width` wide, m logits rows, and the prefix of the buffer to upload.
struct StagedBatch {
  int64_t tokens = 0, seqs = 0, width = 0, logits_rows = 0;
  int max_query_len = 0, max_seq_len = 0, num_decodes = -1;
  int64_t used_int32s = 0;
};

// INVALID_ARGUMENT naming every count when the plan's arrays disagree with
// each other (positions, slots, query starts, block-table entries).
absl::Status CheckPlanShape(const v1::StepPlan& plan);

// The plan as it is (CheckPlanShape must pass). `layout` must hold
// max(tokens, logits rows) tokens, the plan's sequences and its width.
StagedBatch PackDense(const v1::StepPlan& plan, const InputLayout& layout, int32_t* host);

// A decode step padded to `key` (plan null: padding only; else
// ChooseDecodeGraph(plan) gave key or a larger one). Padding rows: token 0 at
// position 0, KV slot -1 (nothing stored), a one-token context in block 0.
// Each real row's table holds its plan columns up to key.context_blocks (the
// rest are beyond its context), padded with block 0. `layout` must hold
// key.batch tokens and sequences and key.context_blocks columns.
StagedBatch PackPaddedDecode(const v1::StepPlan* plan, DecodeGraphKey key, int block_size,
                             const InputLayout& layout, int32_t* host);

// The sequences with exactly one query row, or -1 when the rows do not end
// with the last sequence (query_start_loc.back() != rows: padding rows) —
// AttentionMetadata::num_decodes.
int CountDecodes(std::span<const int32_t> query_start_loc, int64_t rows);

// Whether the GPU sampler implements everything `p` asks for (penalties and
// top-n logprobs are the CPU Sampler's).
bool GpuSamplable(const SamplingParams& p);
// The indices of the rows the CPU sampler takes, ascending.
std::vector<int32_t> CpuSampledRows(std::span<const SamplingRow> rows);

}  // namespace tessera
