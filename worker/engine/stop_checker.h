// Decides whether a choice's newest token ends it: an end-of-sequence token
// (unless the request sets ignore_eos), one of the request's stop_token_ids,
// or its length (max_tokens, or the model's max_model_len). The finishing
// token is part of the output. Stop strings need text and are matched by the
// OutputProcessor, which owns a StopChecker and so decides every reason a
// choice finishes (worker/engine/output_processor.h).
//
// Value types; const methods only, so a StopChecker may be shared between
// threads once built.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "common/api/sampling_params.h"
#include "worker/engine/sequence.h"

namespace tessera {

// What of a request's sampling parameters ends its choices.
struct StopConditions {
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  int max_tokens = 16;  // output tokens at most

  static StopConditions Of(const SamplingParams& params) {
    return {params.ignore_eos, params.stop_token_ids, params.max_tokens};
  }
};

class StopChecker {
 public:
  // `eos_token_ids`: the model's end-of-sequence tokens (may be none).
  // `max_model_len`: no choice grows past this many tokens, prompt included.
  StopChecker(std::vector<int32_t> eos_token_ids, int max_model_len)
      : eos_token_ids_(std::move(eos_token_ids)), max_model_len_(max_model_len) {}

  // Why a choice under `conditions` ends with `token`, now that it holds
  // `prompt_tokens` + `completion_tokens` tokens (`token` counted); kNone
  // while it goes on. Checked in this order: kEos, kStop (a stop token id),
  // kLength.
  FinishReason Check(const StopConditions& conditions, int32_t token, int prompt_tokens,
                     int completion_tokens) const;

  const std::vector<int32_t>& eos_token_ids() const { return eos_token_ids_; }
  int max_model_len() const { return max_model_len_; }

 private:
  std::vector<int32_t> eos_token_ids_;
  int max_model_len_;
};

}  // namespace tessera
