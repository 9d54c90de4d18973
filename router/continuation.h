// Mid-stream failover for the Generate relay (router/generate_relay.h), in
// pure pieces (no gRPC calls, no clocks, no locks), each testable alone:
//   MakeResumable          at intake: a request without a seed gets one (a
//                          random 64-bit value), so every request can be
//                          continued exactly; a client may not send a
//                          continuation of its own
//   DecideFailover         a worker failed after output reached the client:
//                          continue elsewhere, or end (and why)
//   ContinuationRequest    the request for the next worker: the same request
//                          (prompt, seed, sampling parameters, max_tokens)
//                          with the delivered output as its continuation
//                          (n > 1: each unfinished choice with its output;
//                          the finished ones are not run again)
//   ContinuationBlockHashes  placement hashes of prompt + delivered output, so
//                          a worker that holds the longer prefix is preferred
// The worker resumes the sequence after the delivered output with the same
// sampling position and text state (worker/engine/continuation.h), so the
// client's stream shows no seam: no repeated and no missing token or text.
//
// The router's seed is not shown to the client (responses carry no seed); a
// client that wants to repeat a request sets its own. With n > 1, choice i
// samples with seed + i, as for a client's seed, also in a continuation.
//
// Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::router {

// INVALID_ARGUMENT when the client set `continuation` (only the router's
// failover sets it); otherwise gives a request without sampling.seed a seed
// drawn from `bitgen`.
absl::Status MakeResumable(v1::GenerateRequest& request, absl::BitGenRef bitgen);

// What reached the client of one choice (the relay keeps one per choice,
// GenerateResponse.index).
struct DeliveredChoice {
  std::vector<int32_t> token_ids;
  bool finished = false;  // its final message reached the client
};

// What the relay knows when a worker failed after a message reached the
// client.
struct FailoverFacts {
  int choices = 1;               // SamplingParams.n
  int finals_delivered = 0;      // messages with a finish reason that reached the client
  int failovers_done = 0;        // continuations started so far for this request
  int max_failovers = 2;         // --max-failovers
  int64_t delivered_tokens = 0;  // tokens that reached the client, all choices
  // The most tokens any choice without its final message has delivered.
  int64_t longest_unfinished = 0;
  int64_t max_tokens = 16;  // the request's (the default when unset)

  // The facts of `delivered` (one entry per choice) with these limits.
  static FailoverFacts Of(std::span<const DeliveredChoice> delivered, int failovers_done,
                          int max_failovers, int64_t max_tokens);
};

enum class FailoverDecision {
  kContinue,         // re-issue as a continuation on another worker
  kComplete,         // every choice's final message reached the client: it has it all
  kNoFailoversLeft,  // max_failovers reached
  kNothingLeft,      // a choice delivered max_tokens without a final message: nothing to continue
};

FailoverDecision DecideFailover(const FailoverFacts& facts);

// Why a stream was not continued, for the client's error ("" for kContinue
// and kComplete), e.g. "not continued: --max-failovers (2) reached".
std::string FailoverRefusal(FailoverDecision decision, const FailoverFacts& facts);

// `original` (as the first worker got it) with what the client has as its
// continuation (`delivered`: one entry per choice) and
// return_prompt_token_ids cleared (the client has them). n = 1:
// continuation.output_token_ids; n > 1: continuation.choices, one per choice
// not finished (index, its tokens).
v1::GenerateRequest ContinuationRequest(const v1::GenerateRequest& original,
                                        std::span<const DeliveredChoice> delivered);

// The full-block hashes (common/block_hash.h) of `original`'s prompt token ids
// followed by the first unfinished choice's delivered tokens (the choices
// share the prompt's blocks; their outputs differ); empty when block_size <=
// 0 (unknown yet).
std::vector<uint64_t> ContinuationBlockHashes(const v1::GenerateRequest& original,
                                              std::span<const DeliveredChoice> delivered,
                                              int block_size);

}  // namespace tessera::router
