#include "worker/engine/continuation.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tessera {
namespace {

// `output` (named `field`) leaves at least one token to generate and holds
// only ids of the vocabulary.
absl::Status ValidateOutput(std::span<const int32_t> output, const std::string& field,
                            const SamplingParams& params, const api::RequestLimits& limits) {
  if (static_cast<int64_t>(output.size()) >= params.max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " has ", output.size(), " tokens but must have fewer than sampling.max_tokens (",
        params.max_tokens, "): nothing would be left to generate"));
  }
  for (size_t i = 0; i < output.size(); ++i) {
    if (output[i] < 0 || output[i] >= limits.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "] = ", output[i],
                                                     " is outside the vocabulary [0, ",
                                                     limits.vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateContinuation(std::span<const int32_t> output,
                                  std::span<const ContinuedChoice> choices,
                                  const SamplingParams& params, const api::RequestLimits& limits) {
  if (output.empty() && choices.empty()) return absl::OkStatus();
  if (params.n == 1) {
    if (!choices.empty()) {
      return absl::InvalidArgumentError(
          "continuation.choices is for sampling.n > 1; with n = 1 give "
          "continuation.output_token_ids");
    }
    return ValidateOutput(output, "continuation.output_token_ids", params, limits);
  }
  if (!output.empty() || choices.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "with sampling.n = ", params.n,
        " a continuation gives each unfinished choice in continuation.choices (each choice has "
        "its own output), not continuation.output_token_ids"));
  }
  std::vector<bool> seen(static_cast<size_t>(params.n), false);
  for (size_t c = 0; c < choices.size(); ++c) {
    const int index = choices[c].index;
    if (index < 0 || index >= params.n) {
      return absl::InvalidArgumentError(absl::StrCat("continuation.choices[", c,
                                                     "].index = ", index, " is outside [0, ",
                                                     params.n, ") (sampling.n)"));
    }
    if (seen[index]) {
      return absl::InvalidArgumentError(
          absl::StrCat("continuation.choices[", c, "].index = ", index, " is given twice"));
    }
    seen[index] = true;
    RETURN_IF_ERROR(ValidateOutput(choices[c].output,
                                   absl::StrCat("continuation.choices[", c, "].output_token_ids"),
                                   params, limits));
  }
  return absl::OkStatus();
}

}  // namespace tessera
