// The engine's output path: turns each step's RequestOutputs into what a
// client sees. Per request and choice (RequestOutput::index) it keeps an incremental detokenizer
// and the stop strings (StopStringMatcher); for each step's outputs it
//   - appends the new tokens' text (RequestOutput::text) when the request
//     asked for text,
//   - ends a request whose text reaches one of its stop strings: that output
//     becomes the last (finish_reason kStop, text cut before the stop
//     string) and the caller must abort the sequence in the scheduler;
//     anything the scheduler still reports for it is dropped,
//   - on a request's last output, flushes the text held back.
// Stop tokens (EOS, stop_token_ids) and max_tokens are decided where the
// token is appended (Scheduler::CheckStop) and arrive here as finish
// reasons; stop strings need text, so they are decided here.
//
// This is where the tokenizer plugs into generation: the engine calls it for
// every step (Engine::Step), so the gRPC stream, tessera-generate and tests
// all get the same text and stop-string behaviour.
//
// Not thread-safe: owned and called by the engine's one thread.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/tokenizer.h"
#include "worker/engine/request_output.h"
#include "worker/engine/stop_string_matcher.h"

namespace tessera {

class OutputProcessor {
 public:
  // `tokenizer` may be null (no text; stop strings are then not applied) and
  // must outlive the processor.
  explicit OutputProcessor(const Tokenizer* tokenizer) : tokenizer_(tokenizer) {}

  // How many of the prompt's last tokens Add takes as the detokenizer's
  // context (vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET): enough for
  // SentencePiece's leading space and for a character split across tokens.
  static constexpr size_t kPromptContextTokens = 5;

  // Starts tracking a request the scheduler admitted. `prompt_tail`: the
  // prompt's last tokens, so the output's text continues the prompt's (a
  // SentencePiece "▁word" right after the prompt keeps its space, as run.c
  // and vLLM print it); `stop`: its stop strings; `return_text`: whether its
  // outputs carry text; `n`: its choices, each with its own text state. A
  // request with neither text nor stop strings costs nothing here.
  void Add(const std::string& request_id, std::span<const int32_t> prompt_tail,
           std::vector<std::string> stop, bool return_text, int n = 1);

  // A continued request (worker/engine/continuation.h): replays `delivered`,
  // the output the client already has, through choice 0's text state one
  // token at a time, as the steps that produced them did, and drops the
  // text; the next output's text then continues where the first worker's
  // stream stopped. Call right after Add. No-op for a request without text
  // state.
  void PrimeContinuation(const std::string& request_id, std::span<const int32_t> delivered);

  // A choice of a request that a stop string ended.
  struct Stopped {
    std::string request_id;
    int index = 0;
  };
  // Processes one step's outputs in place (see the top of the file). Returns
  // the choices this call ended by a stop string; the caller aborts each in
  // the scheduler (Scheduler::AbortChoice) and passes the abort outputs
  // through Process, which drops them (and anything else of those choices
  // before their final output).
  std::vector<Stopped> Process(std::vector<RequestOutput>& outputs);

  // Requests tracked (added and not yet finished).
  size_t size() const { return requests_.size(); }

 private:
  // One request's text state.
  struct Text {
    Text(const Tokenizer* tokenizer, std::vector<std::string> stop, bool return_text)
        : decoder(tokenizer, /*skip_special=*/true),
          matcher(std::move(stop)),
          return_text(return_text) {}
    IncrementalDecoder decoder;
    StopStringMatcher matcher;
    bool return_text;
  };
  // Applies `text` to `output`; true when a stop string ended it.
  bool ProcessText(Text& text, RequestOutput& output);

  // One request: a text state per choice (empty: no text, no stop strings)
  // and how many choices have not given their last output.
  struct Request {
    std::vector<std::unique_ptr<Text>> choices;
    int unfinished = 1;
  };

  const Tokenizer* const tokenizer_;
  absl::flat_hash_map<std::string, Request> requests_;
  // Choices ended by a stop string, waiting for the scheduler's final (abort)
  // output.
  absl::flat_hash_set<std::pair<std::string, int>> stopped_;
};

}  // namespace tessera
