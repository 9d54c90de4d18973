// Engine requests for tests. Header-only; for tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "worker/engine/engine.h"

namespace tessera::testing {

// A greedy request that ignores EOS, so it runs exactly `max_tokens` steps.
inline EngineRequest GreedyEngineRequest(const std::string& id, std::vector<int32_t> prompt,
                                         int max_tokens) {
  EngineRequest r;
  r.request_id = id;
  r.prompt_token_ids = std::move(prompt);
  r.params.temperature = 0.0f;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  return r;
}

}  // namespace tessera::testing
