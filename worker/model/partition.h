// Tensor-parallel partitioning: which contiguous part of the heads, the MLP's
// intermediate dimension and the vocabulary each rank owns.
//
// Tensor parallelism may be uneven: n items over `world` ranks give the first
// n % world ranks one item more than the others (so smollm2-135m's 3 KV heads
// run at TP=2 as {0, 1} and {2}). Query heads follow their KV group, so a rank
// always holds whole grouped-query-attention groups.
// Thread-safe: pure functions over values.
#pragma once

#include <cstdint>
#include <ostream>

#include "absl/status/statusor.h"

namespace tessera {

struct ModelConfig;

// Half-open range of indices [begin, end).
struct Range {
  int64_t begin = 0;
  int64_t end = 0;

  int64_t size() const { return end - begin; }
  bool operator==(const Range&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Range& r);

// Splits n >= 0 items into `world` >= 1 contiguous ranges as evenly as possible
// (the first n % world ranges get one more item) and returns rank's range,
// 0 <= rank < world. A rank may get an empty range when n < world.
Range EvenSplit(int64_t n, int world, int rank);

// What rank `rank` of a tensor-parallel group of `world` ranks owns.
struct TpPartition {
  Range kv_heads;      // KV heads, split as evenly as possible
  Range q_heads;       // the query heads of those KV groups: [kv.begin*g, kv.end*g), g = heads/kv
  Range intermediate;  // EvenSplit(intermediate_size): gate/up rows, down columns
  Range vocab;         // EvenSplit(vocab_size): vocab-parallel embedding and lm_head rows
};

// The shard of rank `rank` of `world`. INVALID_ARGUMENT when world < 1, rank
// is outside [0, world), or the config cannot be split at this size (every
// rank needs at least one KV head, one intermediate row and one vocab row),
// e.g. "num_key_value_heads (4) must be at least the tensor-parallel size (8)".
// The config must be valid (ModelConfig::Validate).
absl::StatusOr<TpPartition> PartitionForRank(const ModelConfig& config, int world, int rank);

}  // namespace tessera
