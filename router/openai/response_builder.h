// Tessera's internal response stream -> OpenAI response bodies, one builder
// per HTTP request. The glue feeds every GenerateResponse of every prompt's
// stream (interleaved in any order) to OnMessage, then calls Finish:
//
//   stream mode:  OnMessage returns the SSE events to write now
//                 ("data: {chunk}\n\n" ...); Finish returns the trailing
//                 events (the usage chunk with "choices": [] when
//                 include_usage, then "data: [DONE]\n\n").
//   otherwise:    OnMessage returns ""; Finish returns the whole JSON body
//                 (choices sorted by index, usage summed).
//
// Chunk shapes are OpenAI's: chat.completion.chunk (each choice's first
// chunk is delta {"role": "assistant", "content": ""}, then
// {"content": ...}; the finish reason rides on the choice's last chunk) and
// text_completion; with include_usage every chunk has "usage": null.
// Choice index = prompt_index * n + GenerateResponse.index. Finish reasons:
// STOP and EOS -> "stop", LENGTH -> "length", ABORT -> "abort" (vLLM's
// word). A message with FINISH_REASON_ERROR makes error() a 500
// server_error with the worker's message; in stream mode OnMessage returns
// its error event (the SDK throws APIError on it) and Finish then returns
// only "data: [DONE]\n\n"; otherwise Finish returns ErrorBody(*error()) and
// the glue answers with error()->http_status. Usage counts each prompt's
// prompt tokens (and cached tokens) once, however many choices it has, and
// sums completion tokens over all choices.
//
// All output is valid UTF-8 (invalid bytes become U+FFFD). Not thread-safe:
// one builder per request, called from one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/tokenizer.h"
#include "nlohmann/json.hpp"
#include "router/openai/api_error.h"
#include "router/openai/logprobs_json.h"
#include "router/openai/request.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::router::openai {

struct ResponseMeta {
  std::string id;       // "chatcmpl-<hex>" / "cmpl-<hex>" (see MakeResponseId)
  int64_t created = 0;  // unix seconds
  std::string model;    // the served model name the response reports
};

// "chatcmpl-" / "cmpl-" followed by 32 random hex digits.
std::string MakeResponseId(Endpoint endpoint);

// `data: {"error": {...}}\n\n`, the error event of an SSE stream.
std::string ErrorEvent(const ApiError& error);

class ResponseBuilder {
 public:
  // `request`: the parsed request (endpoint, n, stream, include_usage,
  // logprobs, echo text; ResolveEchoText already called). `tokenizer`: for
  // logprob token strings; may be null when no logprobs were asked (tokens
  // are then "token_id:<id>"). It must outlive the builder.
  ResponseBuilder(const ParsedRequest& request, ResponseMeta meta, const Tokenizer* tokenizer);
  ResponseBuilder(const ResponseBuilder&) = delete;
  ResponseBuilder& operator=(const ResponseBuilder&) = delete;

  // One message of prompt `prompt_index`'s stream. Messages of an unknown
  // prompt or choice, of a choice that already finished, or after an error
  // or Finish, are ignored ("").
  std::string OnMessage(int prompt_index, const v1::GenerateResponse& message);

  // The trailing events (stream) or the whole body (otherwise); call once,
  // after the last message (or early, when the glue gives up: unfinished
  // choices then have "finish_reason": null).
  std::string Finish();

  // Set once a message carried FINISH_REASON_ERROR.
  const std::optional<ApiError>& error() const { return error_; }
  // Every choice of every prompt has received its final message.
  bool all_finished() const { return finished_choices_ == total_choices_; }

 private:
  struct Choice {
    bool started = false;             // first chunk sent / echo text placed
    std::string finish_reason;        // "" until the final message
    std::string text;                 // non-stream: the whole text
    int64_t text_chars = 0;           // code points of the text so far (text_offset)
    int64_t tokens = 0;               // tokens seen
    int64_t completion_tokens = 0;    // from the final message's usage
    nlohmann::ordered_json logprobs;  // non-stream: chat "content" array / completions object
  };
  struct PromptUsage {
    int64_t prompt_tokens = 0;
    int64_t cached_tokens = 0;
  };

  nlohmann::ordered_json ChunkHead() const;
  nlohmann::ordered_json Usage() const;
  std::string ChatEvents(int index, Choice& c, const v1::GenerateResponse& m, std::string text);
  std::string CompletionEvents(int index, Choice& c, const v1::GenerateResponse& m,
                               std::string text);
  std::string Body() const;

  const Endpoint endpoint_;
  const bool stream_;
  const bool include_usage_;
  const int n_;
  const LogprobsMode logprobs_mode_;
  const std::vector<std::string> echo_text_;
  const ResponseMeta meta_;
  internal::LogprobsFormatter formatter_;
  std::map<int64_t, Choice> choices_;  // by choice index
  std::vector<PromptUsage> prompt_usage_;
  int64_t total_choices_;
  int64_t finished_choices_ = 0;
  std::optional<ApiError> error_;
  bool finished_ = false;
};

}  // namespace tessera::router::openai
