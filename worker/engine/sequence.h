// One generation request as the engine core sees it: its tokens (prompt, then
// output), how many of them have their KV in the cache, the KV blocks that hold
// them, and where it is in its life:
//
//   WAITING --admit--> RUNNING --preempt--> PREEMPTED --readmit--> WAITING --> RUNNING
//      |                  |                     |
//      +------------------+---------------------+--> FINISHED(reason)
//
// A sequence is created WAITING by the engine, handed to the Scheduler, which
// owns it from then on and drives every transition.
//
// Parallel sampling (params().n > 1): the request enters as one sequence,
// choice 0, with a fork pending. In the step its prompt's last token runs,
// the scheduler samples that row n times and forks choices 1..n-1
// (Scheduler::Update, BlockManager::Fork): each is a sequence of its own
// (same request id, its own choice_index(), tokens and RNG seed) sharing the
// prompt's KV blocks by reference count. A preempted sequence sits
// in the waiting queue as PREEMPTED until the scheduler admits it again, which
// takes it through WAITING to RUNNING in one go. An illegal transition is a
// programming error and aborts the process (TESSERA_CHECK).
//
// Not thread-safe: owned and mutated by the engine thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/api/sampling_params.h"
#include "common/block_hash.h"
#include "common/check.h"
#include "common/ids.h"

namespace tessera {

enum class SequenceStatus : uint8_t {
  kWaiting,    // in the waiting queue, holds no KV blocks
  kRunning,    // admitted: holds KV blocks, scheduled each step it fits the budget
  kPreempted,  // lost its KV blocks to a more important sequence; waits to recompute
  kFinished,   // done (see FinishReason); holds nothing
};

enum class FinishReason {
  kNone,    // not finished
  kLength,  // max_tokens or max_model_len reached
  kStop,    // a stop token id was sampled
  kEos,     // an end-of-sequence token was sampled
  kAbort,   // cancelled (client, deadline, drain)
  kError,   // the engine failed this request
};

// "running", "waiting", ...; for logs.
absl::string_view SequenceStatusName(SequenceStatus status);
// "length", "stop", "eos", "abort", "error" ("" for kNone): the wire names.
absl::string_view FinishReasonName(FinishReason reason);

// Cache-line aligned: the fields a step reads sit in the first line.
class alignas(64) Sequence {
 public:
  // `prompt` may be empty here (the Scheduler refuses it at admission).
  // `priority`: lower is more important (vLLM convention); used by the
  // priority policy. `arrival_time_ns`: the engine's clock at arrival, for
  // metrics; ordering uses the arrival order the Scheduler assigns.
  Sequence(std::string request_id, SeqId id, std::vector<int32_t> prompt, SamplingParams params,
           int priority = 0, int64_t arrival_time_ns = 0);

  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

  // ---- identity and parameters ----
  const std::string& request_id() const { return request_id_; }
  SeqId id() const { return id_; }
  const SamplingParams& params() const { return params_; }
  // num_prompt_tokens() + params().max_tokens: the length at which it
  // finishes (decided by the OutputProcessor; the Scheduler checks it).
  int max_total_tokens() const { return max_total_tokens_; }
  int priority() const { return priority_; }
  int64_t arrival_time_ns() const { return arrival_time_ns_; }
  // Position in arrival order, assigned by the Scheduler at admission; kept
  // across preemptions, so a resumed sequence keeps its place.
  uint64_t arrival_order() const { return arrival_order_; }
  void set_arrival_order(uint64_t order) { arrival_order_ = order; }
  // Seed of this sequence's sampler stream; set by the engine.
  uint64_t rng_seed() const { return rng_seed_; }
  void set_rng_seed(uint64_t seed) { rng_seed_ = seed; }

  // ---- parallel sampling ----
  // Which of the request's params().n choices this sequence is (0 for the
  // sequence the request entered as).
  int choice_index() const { return choice_index_; }
  // The output processor's handle of the request (OutputProcessor::Add),
  // carried into its outputs so that the per-token path finds the request's
  // state without a lookup by id; -1: none. Forks keep their parent's.
  int32_t output_slot() const { return output_slot_; }
  void set_output_slot(int32_t slot) { output_slot_ = slot; }
  // Choice 0 of a request with n > 1 that has not forked yet: its first
  // sample is drawn n times and forks the other choices.
  bool fork_pending() const { return (fork_flags_ & kForkPending) != 0; }
  // The seed choice `i` samples with (0 <= i < params().n): rng_seed() for
  // i == 0, else what set_choice_seeds gave (the engine sets them on choice
  // 0), or rng_seed() + i without them.
  uint64_t choice_seed(int i) const {
    if (i == 0) return rng_seed_;
    const size_t k = static_cast<size_t>(i) - 1;
    return k < choice_seeds_.size() ? choice_seeds_[k] : rng_seed_ + static_cast<uint64_t>(i);
  }
  // Seeds of choices 1..n-1 (n - 1 of them).
  void set_choice_seeds(std::vector<uint64_t> seeds) { choice_seeds_ = std::move(seeds); }
  // Choice `index` (1..n-1) of `parent`'s request, forked from it after its
  // first sample: same request id, id, parameters, priority and arrival;
  // the prompt copied; WAITING, holding nothing (BlockManager::Fork shares
  // the parent's blocks with it; the Scheduler makes it RUNNING).
  static std::unique_ptr<Sequence> ForkOf(const Sequence& parent, int index);
  // Clears the pending fork (the scheduler forked, or the request ended).
  void ClearForkPending() { fork_flags_ &= static_cast<uint8_t>(~kForkPending); }

  // ---- tokens ----
  // Prompt followed by output tokens, contiguous.
  std::span<const int32_t> all_tokens() const { return tokens_; }
  std::span<const int32_t> prompt_tokens() const {
    return std::span<const int32_t>(tokens_).first(num_prompt_tokens_);
  }
  std::span<const int32_t> output_tokens() const {
    return std::span<const int32_t>(tokens_).subspan(num_prompt_tokens_);
  }
  int num_tokens() const { return static_cast<int>(tokens_.size()); }
  int num_prompt_tokens() const { return num_prompt_tokens_; }
  int num_output_tokens() const { return num_tokens() - num_prompt_tokens_; }
  // Requires num_tokens() > 0.
  int32_t last_token() const { return tokens_.back(); }
  // A continued request (one resumed here after another worker delivered
  // `output` of it to the client: GenerateRequest.continuation): appends
  // `output` as output tokens before admission, so penalties, max_tokens, the
  // sampler's position (num_output_tokens()) and usage count them. Requires a
  // new sequence (WAITING, no output, nothing computed), n == 1 and
  // output.size() < params().max_tokens.
  void PrimeOutput(std::span<const int32_t> output);
  // Makes room for max_tokens output tokens, so that appending never
  // reallocates (all_tokens() stays put). The Scheduler calls it once the
  // request is admitted (max_tokens is then known to be sane).
  void ReserveOutput();
  // Appends a sampled token. Requires status RUNNING.
  void AppendToken(int32_t token) {
    TESSERA_CHECK(status_ == SequenceStatus::kRunning, "AppendToken on ", request_id_, " in state ",
                  SequenceStatusName(status_));
    tokens_.push_back(token);
  }

  // ---- KV state (maintained by BlockManager and Scheduler) ----
  // Leading tokens whose KV is in this sequence's blocks. 0 <= n <= num_tokens().
  int num_computed_tokens() const { return num_computed_tokens_; }
  void set_num_computed_tokens(int n) {
    TESSERA_CHECK(n >= 0 && n <= num_tokens(), "num_computed_tokens ", n, " out of [0, ",
                  num_tokens(), "] for ", request_id_);
    num_computed_tokens_ = n;
  }
  // Prompt tokens found in the prefix cache at first admission (-1 before);
  // reported as usage.cached_prompt_tokens. Not changed by a later resume.
  int num_cached_tokens() const { return num_cached_tokens_; }
  // KV block ids, in token order: token i lives in block_table()[i / block_size].
  const std::vector<int32_t>& block_table() const { return block_table_; }
  int num_preemptions() const { return num_preemptions_; }

  // ---- state machine ----
  SequenceStatus status() const { return status_; }
  FinishReason finish_reason() const { return finish_reason_; }
  bool is_finished() const { return status_ == SequenceStatus::kFinished; }
  // WAITING -> RUNNING.
  void SetRunning();
  // RUNNING -> PREEMPTED. Requires that its blocks were freed (empty block
  // table, nothing computed). Counts the preemption.
  void SetPreempted();
  // PREEMPTED -> WAITING.
  void SetWaiting();
  // WAITING | RUNNING | PREEMPTED -> FINISHED. Requires reason != kNone.
  void SetFinished(FinishReason reason);

 private:
  friend class BlockManager;

  static constexpr uint8_t kForkPending = 1;  // see fork_pending()
  // Its KV block at num_computed_tokens() may be shared with other choices
  // (BlockManager::Fork): the next AllocateSlots copies it before writing.
  static constexpr uint8_t kSharedTail = 2;

  // Hot fields first, in one cache line (64 bytes): what every Schedule() and
  // Update() of a running sequence reads.
  std::vector<int32_t> tokens_;  // prompt then output
  // Owned by BlockManager: the block table, and how many of its leading
  // blocks have been offered to the prefix cache.
  std::vector<int32_t> block_table_;
  int num_registered_blocks_ = 0;
  int num_computed_tokens_ = 0;
  const int max_total_tokens_;
  SequenceStatus status_ = SequenceStatus::kWaiting;
  uint8_t fork_flags_ = 0;  // kForkPending | kSharedTail

  // Owned by BlockManager: the chained hashes of the leading full blocks of
  // tokens_ (a memo, extended incrementally; tokens never change, so it
  // survives preemption).
  std::vector<BlockHash> block_hashes_;
  const int num_prompt_tokens_;
  const SamplingParams params_;
  const std::string request_id_;
  const SeqId id_;
  const int priority_;
  const int64_t arrival_time_ns_;
  uint64_t arrival_order_ = 0;
  uint64_t rng_seed_ = 0;
  FinishReason finish_reason_ = FinishReason::kNone;
  int num_preemptions_ = 0;
  int num_cached_tokens_ = -1;
  int choice_index_ = 0;
  int32_t output_slot_ = -1;
  std::vector<uint64_t> choice_seeds_;  // choices 1..n-1 (choice 0: n > 1 only)
};

}  // namespace tessera
