#include "worker/model/partition.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "worker/model/model_config.h"

namespace tessera {

std::ostream& operator<<(std::ostream& os, const Range& r) {
  return os << "[" << r.begin << ", " << r.end << ")";
}

Range EvenSplit(int64_t n, int world, int rank) {
  const int64_t base = n / world;
  const int64_t extra = n % world;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return Range{begin, begin + base + (rank < extra ? 1 : 0)};
}

absl::StatusOr<TpPartition> PartitionForRank(const ModelConfig& config, int world, int rank) {
  if (world < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the tensor-parallel size must be at least 1 (got ", world, ")"));
  }
  if (rank < 0 || rank >= world) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank, " is outside the tensor-parallel group of size ", world));
  }
  auto at_least = [world](absl::string_view field, int64_t n) -> absl::Status {
    if (n < world) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " (", n, ") must be at least the tensor-parallel size (", world, ")"));
    }
    return absl::OkStatus();
  };
  for (const auto& [field, n] :
       {std::pair<absl::string_view, int64_t>{"num_key_value_heads", config.num_key_value_heads},
        {"intermediate_size", config.intermediate_size},
        {"vocab_size", config.vocab_size}}) {
    absl::Status s = at_least(field, n);
    if (!s.ok()) return s;
  }
  if (config.num_key_value_heads <= 0 ||
      config.num_attention_heads % config.num_key_value_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_attention_heads (", config.num_attention_heads,
        ") must be a multiple of num_key_value_heads (", config.num_key_value_heads, ")"));
  }
  const int64_t group = config.num_attention_heads / config.num_key_value_heads;
  TpPartition p;
  p.kv_heads = EvenSplit(config.num_key_value_heads, world, rank);
  p.q_heads = Range{p.kv_heads.begin * group, p.kv_heads.end * group};
  p.intermediate = EvenSplit(config.intermediate_size, world, rank);
  p.vocab = EvenSplit(config.vocab_size, world, rank);
  return p;
}

}  // namespace tessera
