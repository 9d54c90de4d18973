// The engine's output path: turns each step's RequestOutputs into what a
// client sees, and decides every reason a choice finishes. Per request and
// choice (RequestOutput::index) it keeps the request's stop conditions, an
// incremental detokenizer and the stop strings (StopStringMatcher); for each
// step's outputs it
//   - decides whether an output's new token ends its choice (StopChecker:
//     EOS unless ignore_eos -> kEos, stop_token_ids -> kStop, max_tokens or
//     max_model_len -> kLength; the token is part of the output),
//   - appends the new tokens' text (RequestOutput::text) when the request
//     asked for text,
//   - ends a choice whose text reaches one of its stop strings (finish_reason
//     kStop, text cut before the stop string, also when the token had ended
//     it otherwise),
//   - on a choice's last output, flushes the text held back,
// and returns the choices it ended, which the caller finishes in the
// scheduler (Scheduler::FinishChoice) before the next step. Outputs that
// arrive finished (aborts, errors: the scheduler ended them) only get their
// text flushed.
//
// This is where the tokenizer plugs into generation: the engine calls it for
// every step (Engine::Step), so the gRPC stream, tessera-generate and tests
// all get the same text, stop tokens and stop strings.
//
// Not thread-safe: owned and called by the engine's one thread.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/api/sampling_params.h"
#include "common/tokenizer.h"
#include "worker/engine/request_output.h"
#include "worker/engine/stop_checker.h"
#include "worker/engine/stop_string_matcher.h"

namespace tessera {

class OutputProcessor {
 public:
  // `tokenizer` may be null (no text; stop strings are then not applied) and
  // must outlive the processor. `stop_checker`: the model's EOS tokens and
  // max_model_len.
  OutputProcessor(const Tokenizer* tokenizer, StopChecker stop_checker)
      : tokenizer_(tokenizer), stop_checker_(std::move(stop_checker)) {}

  // How many of the prompt's last tokens Add takes as the detokenizer's
  // context (vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET): enough for
  // SentencePiece's leading space and for a character split across tokens.
  static constexpr size_t kPromptContextTokens = 5;

  // Starts tracking a request the scheduler admitted. `prompt_tail`: the
  // prompt's last tokens, so the output's text continues the prompt's (a
  // SentencePiece "▁word" right after the prompt keeps its space, as run.c
  // and vLLM print it); `params`: its stop conditions (ignore_eos,
  // stop_token_ids, max_tokens), stop strings and choices (n), each choice
  // with its own text state; `return_text`: whether its outputs carry text.
  // Returns the request's slot: give it to its sequences
  // (Sequence::set_output_slot), whose outputs then carry it
  // (RequestOutput::output_slot) and find their state without a lookup by
  // id. A request already tracked under `request_id` is replaced.
  int32_t Add(const std::string& request_id, std::span<const int32_t> prompt_tail,
              const SamplingParams& params, bool return_text);
  // Stops tracking `request_id` (added but never run: the scheduler refused
  // it). No-op when unknown.
  void Remove(const std::string& request_id);

  // A continued request (worker/engine/continuation.h): replays `delivered`,
  // the output the client already has, through choice 0's text state one
  // token at a time, as the steps that produced them did, and drops the
  // text; the next output's text then continues where the first worker's
  // stream stopped. Call right after Add. No-op for a request without text
  // state. (Its stop conditions count the delivered tokens through the
  // outputs' completion_tokens.)
  void PrimeContinuation(const std::string& request_id, std::span<const int32_t> delivered);

  // A choice this processor ended, and why.
  struct Finished {
    std::string request_id;
    int index = 0;
    FinishReason reason = FinishReason::kNone;
  };
  // Processes one step's outputs in place (see the top of the file); each
  // output carries at most one new token. Returns the choices this call
  // ended, in output order; the caller finishes each in the scheduler
  // (Scheduler::FinishChoice) before the next step, so nothing more of them
  // comes. Outputs of requests not tracked pass through unchanged.
  std::vector<Finished> Process(std::span<RequestOutput> outputs);

  // Requests tracked (added, and not every choice has given its last output).
  size_t size() const { return by_id_.size(); }
  bool contains(const std::string& request_id) const { return by_id_.contains(request_id); }

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

  // One request: its id, its stop conditions, a text state per choice
  // (empty: no text, no stop strings) and how many choices have not given
  // their last output. `live`: the slot holds a tracked request.
  struct Request {
    std::string id;
    bool live = false;
    StopConditions stop;
    std::vector<std::unique_ptr<Text>> choices;
    int unfinished = 1;
  };
  // The request `output` belongs to (by its slot, else by its id), or null.
  Request* Find(const RequestOutput& output);
  // Frees `slot` (its request gave its last output, or was removed).
  void Release(int32_t slot);

  const Tokenizer* const tokenizer_;
  const StopChecker stop_checker_;
  // The tracked requests by slot (a freed slot is reused), and their slots by id.
  std::vector<Request> slots_;
  std::vector<int32_t> free_slots_;
  absl::flat_hash_map<std::string, int32_t> by_id_;
};

}  // namespace tessera
