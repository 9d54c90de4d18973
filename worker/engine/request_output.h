// What the engine returns for one request after a step, and what it is
// asked to run. Value types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/api/sampling_params.h"
#include "worker/engine/continuation.h"
#include "worker/engine/sequence.h"
#include "worker/exec/sampler.h"

namespace tessera {

struct EngineRequest {
  std::string request_id;
  std::vector<int32_t> prompt_token_ids;
  SamplingParams params;
  int priority = 0;
  bool return_text = false;  // outputs carry their text (RequestOutput::text)
  // A continued request (worker/engine/continuation.h): with n = 1 its
  // delivered output, with n > 1 its unfinished choices; both empty: a new
  // request.
  std::vector<int32_t> continued_output;
  std::vector<ContinuedChoice> continued_choices;

  // The final outputs the request will give: one per choice it runs
  // (params.n, or the unfinished choices of a continuation).
  int choices() const {
    return continued_choices.empty() ? params.n : static_cast<int>(continued_choices.size());
  }
};

// What one step produced for one choice of one request: its new tokens (zero
// or one), with logprobs when asked, their text when asked, and on the
// choice's last output the finish reason and that choice's usage. A request
// with n > 1 ends after all n choices have given their last output.
struct RequestOutput {
  std::string request_id;
  int index = 0;  // the choice, 0 .. params.n - 1
  // The output processor's handle of the request (Sequence::output_slot);
  // -1: found by request_id.
  int32_t output_slot = -1;
  std::vector<int32_t> new_tokens;
  std::vector<SampleResult> logprobs;  // one per new token when params.logprobs > 0
  // The new tokens' text (OutputProcessor), when the request asked for text:
  // UTF-8, never past a stop string; bytes of a character split across
  // tokens come with the token that completes it.
  std::string text;
  FinishReason finish_reason = FinishReason::kNone;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_prompt_tokens = 0;
  bool finished() const { return finish_reason != FinishReason::kNone; }
};

}  // namespace tessera
