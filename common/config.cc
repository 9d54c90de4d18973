#include "common/config.h"

#include "absl/strings/str_cat.h"

namespace tessera {

absl::StatusOr<SchedulingPolicy> ParseSchedulingPolicy(absl::string_view name) {
  if (name == "fcfs") return SchedulingPolicy::kFcfs;
  if (name == "priority") return SchedulingPolicy::kPriority;
  return absl::InvalidArgumentError(
      absl::StrCat("--scheduling-policy: unknown policy '", name, "' (expected fcfs or priority)"));
}

absl::string_view SchedulingPolicyName(SchedulingPolicy policy) {
  switch (policy) {
    case SchedulingPolicy::kFcfs:
      return "fcfs";
    case SchedulingPolicy::kPriority:
      return "priority";
  }
  return "unknown";
}

absl::Status CacheConfig::Validate() const {
  if (block_size < 1 || block_size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--block-size must be in [1, 1024], got ", block_size));
  }
  if (num_blocks < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--num-kv-blocks must be at least 1, got ", num_blocks));
  }
  if (num_blocks > (int64_t{1} << 31) - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--num-kv-blocks must be below 2^31, got ", num_blocks));
  }
  return absl::OkStatus();
}

absl::Status SchedulerConfig::Validate() const {
  if (max_num_seqs < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-num-seqs must be at least 1, got ", max_num_seqs));
  }
  if (max_num_batched_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-num-batched-tokens must be at least 1, got ", max_num_batched_tokens));
  }
  if (max_model_len < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-model-len must be at least 2, got ", max_model_len));
  }
  if (!enable_chunked_prefill && max_num_batched_tokens < max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-num-batched-tokens (", max_num_batched_tokens,
        ") must be at least --max-model-len (", max_model_len,
        ") when chunked prefill is disabled, or a long prompt could never be scheduled"));
  }
  if (max_waiting < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_waiting must be at least 1, got ", max_waiting));
  }
  return absl::OkStatus();
}

}  // namespace tessera
