// What a request is admitted against: the served model's name and the
// limits its sampling parameters must respect. One struct for the whole
// system: a worker builds it from its model and flags (--max-model-len,
// --max-logprobs), validates with it at its service and in its engine, and
// reports it in ModelInfo (Llm.ListModels); the router validates with the
// one its workers reported. Value type.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/api/sampling_params.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::api {

struct RequestLimits {
  std::string model_name;  // the served model; a request naming another is NOT_FOUND
  int32_t vocab_size = 0;  // token ids must be in [0, vocab_size)
  int max_model_len = 0;   // prompt + max_tokens at most
  int max_logprobs = kDefaultMaxLogprobs;
  int max_stop = kDefaultMaxStop;
  // Largest SamplingParams.n; a worker reports its --max-num-seqs (the n
  // choices of one request run as n sequences at once).
  int max_n = kDefaultMaxN;
};

// ModelInfo <-> RequestLimits. A ModelInfo from a worker that does not
// report max_logprobs / max_stop / max_n (unset) gets the defaults; for
// max_n that is 1: a worker from before parallel sampling cannot fork.
v1::ModelInfo ToModelInfo(const RequestLimits& limits);
RequestLimits FromModelInfo(const v1::ModelInfo& info);

// OK when `requested` is empty or `served`; otherwise NOT_FOUND
// "model 'X' is not served here; this <server> serves 'Y'" (X truncated:
// field_limits.h Truncated).
absl::Status CheckModelName(absl::string_view requested, absl::string_view served,
                            absl::string_view server);
// The same against several names (a router's --served-model-name aliases,
// the first reported in the message).
absl::Status CheckModelName(absl::string_view requested, std::span<const std::string> served,
                            absl::string_view server);

}  // namespace tessera::api
