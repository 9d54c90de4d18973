#include "common/api/sampling_params.h"

#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"

namespace tessera {
namespace {

// `value` must lie within [lo, hi]; NaN fails every comparison, so it is
// rejected too.
absl::Status CheckClosedRange(const char* field, float value, float lo, float hi) {
  if (!(value >= lo && value <= hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be in [", lo, ", ", hi, "], got ", value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SamplingParams::Validate(int max_logprobs, int max_stop, int max_n) const {
  if (max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens must be at least 1, got ", max_tokens));
  }
  if (!(temperature >= 0.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be non-negative, got ", temperature));
  }
  if (!std::isfinite(temperature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be finite, got ", temperature));
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", top_p));
  }
  if (top_k < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be -1 (disabled) or positive, got ", top_k));
  }
  if (absl::Status s = CheckClosedRange("min_p", min_p, 0.0f, 1.0f); !s.ok()) return s;
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "repetition_penalty must be positive and finite (1 = off), got ", repetition_penalty));
  }
  if (absl::Status s = CheckClosedRange("presence_penalty", presence_penalty, -2.0f, 2.0f);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckClosedRange("frequency_penalty", frequency_penalty, -2.0f, 2.0f);
      !s.ok()) {
    return s;
  }
  if (logprobs < 0 || logprobs > max_logprobs) {
    return absl::InvalidArgumentError(
        absl::StrCat("logprobs must be in [0, ", max_logprobs, "], got ", logprobs));
  }
  if (n < 1 || n > max_n) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.n must be in [1, ", max_n, "] (the server's max_n), got ", n));
  }
  const size_t num_stop = stop.size() + stop_token_ids.size();
  if (num_stop > static_cast<size_t>(max_stop < 0 ? 0 : max_stop)) {
    return absl::InvalidArgumentError(absl::StrCat("too many stop sequences: ", num_stop,
                                                   " (limit ", max_stop,
                                                   ", stop strings + stop_token_ids)"));
  }
  for (size_t i = 0; i < stop.size(); ++i) {
    if (stop[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop[", i, "] is empty; stop strings must be non-empty"));
    }
  }
  for (size_t i = 0; i < stop_token_ids.size(); ++i) {
    if (stop_token_ids[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stop_token_ids[", i, "] must be a non-negative token id, got ", stop_token_ids[i]));
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera
