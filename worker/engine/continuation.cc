#include "worker/engine/continuation.h"

#include "absl/strings/str_cat.h"

namespace tessera {

absl::Status ValidateContinuation(std::span<const int32_t> output, const SamplingParams& params,
                                  const api::RequestLimits& limits) {
  if (output.empty()) return absl::OkStatus();
  if (params.n != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "continuation is only for sampling.n = 1 (each choice has its own output), got n = ",
        params.n));
  }
  if (static_cast<int64_t>(output.size()) >= params.max_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("continuation.output_token_ids has ", output.size(),
                     " tokens but must have fewer than sampling.max_tokens (", params.max_tokens,
                     "): nothing would be left to generate"));
  }
  for (size_t i = 0; i < output.size(); ++i) {
    if (output[i] < 0 || output[i] >= limits.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("continuation.output_token_ids[", i, "] = ", output[i],
                       " is outside the vocabulary [0, ", limits.vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera
