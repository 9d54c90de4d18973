#include "worker/engine/stop_checker.h"

#include <algorithm>

namespace tessera {

FinishReason StopChecker::Check(const StopConditions& conditions, int32_t token, int prompt_tokens,
                                int completion_tokens) const {
  if (!conditions.ignore_eos &&
      std::find(eos_token_ids_.begin(), eos_token_ids_.end(), token) != eos_token_ids_.end()) {
    return FinishReason::kEos;
  }
  const std::vector<int32_t>& stop = conditions.stop_token_ids;
  if (!stop.empty() && std::find(stop.begin(), stop.end(), token) != stop.end()) {
    return FinishReason::kStop;
  }
  if (completion_tokens >= conditions.max_tokens ||
      int64_t{prompt_tokens} + completion_tokens >= max_model_len_) {
    return FinishReason::kLength;
  }
  return FinishReason::kNone;
}

}  // namespace tessera
