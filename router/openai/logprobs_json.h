// Internal to router/openai/: Tessera's per-token logprobs (TokenLogprob:
// the chosen token's id and logprob, and its top alternatives) in the two
// OpenAI shapes, chat's {"content": [...]} entries and completions'
// {"tokens", "token_logprobs", "top_logprobs", "text_offset"} arrays.
// Token strings are the tokenizer's text of each id alone (vLLM's
// tokenizer.decode([id]), special tokens kept), cached per id; `bytes` are
// that string's UTF-8 bytes. Logprobs below -9999 (or -inf, NaN) are
// -9999.0, as vLLM writes them. Per request; not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tessera/v1/llm.pb.h"

namespace tessera::router::openai::internal {

// The float as the shortest decimal that reads back as it, as a double (so
// -0.1f is written -0.1, not -0.10000000149011612), clamped to >= -9999.
double LogprobValue(float logprob);

// Unicode code points in UTF-8 `text` (Python's len(str)).
int64_t CodePoints(const std::string& text);

class LogprobsFormatter {
 public:
  // `tokenizer` may be null: tokens are then written "token_id:<id>".
  // `top` alternatives per token are written (0 = the chosen token only).
  LogprobsFormatter(const Tokenizer* tokenizer, int top) : tokenizer_(tokenizer), top_(top) {}

  // Appends the chat entries of `message`'s tokens to `content` (an array).
  void AppendChat(const v1::GenerateResponse& message, nlohmann::ordered_json& content);

  // Appends `message`'s tokens to `logprobs` (an object with the four
  // completions arrays, created when empty). Offsets start at `text_offset`
  // (the code points of the choice's text before these tokens) and advance
  // by each token string's length, as vLLM does.
  void AppendCompletions(const v1::GenerateResponse& message, int64_t text_offset,
                         nlohmann::ordered_json& logprobs);

 private:
  const std::string& TokenText(int32_t id);
  nlohmann::ordered_json Bytes(const std::string& text) const;

  const Tokenizer* tokenizer_;
  int top_;
  absl::flat_hash_map<int32_t, std::string> cache_;
};

}  // namespace tessera::router::openai::internal
