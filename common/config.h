// Configuration structs of the engine. Plain values filled from flags; each has
// `Validate()`, which returns INVALID_ARGUMENT naming the flag and the limit.
// Not thread-safe to mutate; safe to share once built.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {

enum class SchedulingPolicy {
  kFcfs,      // arrival order
  kPriority,  // lower `priority` value first, then arrival (vLLM convention)
};

absl::StatusOr<SchedulingPolicy> ParseSchedulingPolicy(absl::string_view name);
absl::string_view SchedulingPolicyName(SchedulingPolicy policy);

// What fits in KV memory: the block pool.
struct CacheConfig {
  int block_size = 16;     // tokens per KV block (--block-size)
  int64_t num_blocks = 0;  // blocks in the pool (--num-kv-blocks or derived)
  bool enable_prefix_caching = true;

  absl::Status Validate() const;
};

// What runs in one step: batch composition.
struct SchedulerConfig {
  int max_num_seqs = 256;             // running sequences at most (--max-num-seqs)
  int max_num_batched_tokens = 2048;  // tokens per step at most (--max-num-batched-tokens)
  int max_model_len = 2048;           // prompt + output tokens at most (--max-model-len)
  bool enable_chunked_prefill = true;
  SchedulingPolicy policy = SchedulingPolicy::kFcfs;
  int max_waiting = 4096;  // waiting-queue length past which admission says RESOURCE_EXHAUSTED

  absl::Status Validate() const;
};

}  // namespace tessera
