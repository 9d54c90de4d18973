// Continuous-batching scheduler (vLLM V1 style): decides, step by step, which
// sequences run and how many of their tokens, within max_num_seqs and
// max_num_batched_tokens, and keeps their KV blocks through the BlockManager.
//
// One step of the engine thread:
//   (take new requests: AddRequest; take cancellations: Abort)
//   const SchedulerOutput& plan = scheduler.Schedule();
//   ... model runs plan.seqs, samples one token per seq with sample == true ...
//   outputs = scheduler.Update(plan, sampled);
//   ... the output processor decides which choices the new tokens end (EOS,
//       stop tokens, length, stop strings) ...
//   for each choice that ended: scheduler.FinishChoice(id, index, reason);
//   kv_events = scheduler.TakeKvEvents();
// The scheduler does not decide when a sequence is done: it appends tokens
// and keeps the KV; the caller tells it, after each Update(), which choices
// finished, and their blocks are freed then, before the next Schedule().
//
// Policy. Running sequences go first (decodes and unfinished chunked
// prefills), in priority order; then waiting ones, in policy order (fcfs:
// arrival; priority: (priority, arrival)), while there is budget, a free
// sequence slot and KV blocks. A waiting sequence never preempts: when the
// head of the queue does not fit, admission stops for this step. When a
// running sequence needs a block and none is left, the least important running
// sequence (latest arrival; with the priority policy, largest priority value
// first) is preempted by recompute: its blocks are freed and it goes back to
// the waiting queue (fcfs: the front), to recompute prompt + generated tokens
// later (often from its own cached blocks). A step that preempted admits no
// waiting sequence. Admission refuses any request that could not run alone, so
// every admitted request finishes.
//
// Parallel sampling (SamplingParams::n > 1): the request runs as one sequence
// (choice 0) until its prompt's last token is computed; that step samples its
// logits row n times (ScheduledSeq::forks) and Update() forks choices
// 1..n-1, which share the prompt's KV blocks (BlockManager::Fork, copy-on-
// write of a partial last block through SchedulerOutput::block_copies) and
// then run, finish and get preempted as sequences of their own. Such a
// request is admitted only with n free sequence slots, which it keeps
// reserved until it forks. Abort() ends every choice.
//
// Not thread-safe: owned and called by the engine thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/config.h"
#include "worker/engine/block_manager.h"
#include "worker/engine/sequence.h"

namespace tessera {

// One sequence's share of a step: run tokens
// seq->all_tokens()[start, start + num_tokens) at positions start.. .
struct ScheduledSeq {
  Sequence* seq;
  int start;       // == seq->num_computed_tokens() until Update()
  int num_tokens;  // >= 1
  // start + num_tokens == seq->num_tokens(): the model must produce logits for
  // the last row and sample one token. False for a chunk in mid-prompt.
  bool sample;
  // Extra samples of that row: params().n - 1 when this step forks the
  // request's other choices (their tokens follow this seq's in `sampled`),
  // else 0.
  int forks = 0;
};

struct SchedulerOutput {
  // Running sequences first (in priority order), then the ones admitted this
  // step. Valid until the next Schedule().
  std::vector<ScheduledSeq> seqs;
  int total_tokens = 0;  // sum of num_tokens <= max_num_batched_tokens
  int num_sampled = 0;   // sum of sample + forks: the size Update() expects
  int num_decode = 0;    // seqs running a single token and sampling
  int num_prefill = 0;   // the others (prompt or recompute chunks)
  // Request ids preempted by this step (their KV is gone; they will be
  // recomputed). Informational: a runner keeping per-sequence state drops it.
  std::vector<std::string> preempted;
  // KV block copies to run before this step's forward pass (copy-on-write of
  // blocks shared by forked choices), in order.
  std::vector<BlockCopy> block_copies;
  uint64_t step = 0;  // Schedule() count; Update() checks it gets the latest

  bool empty() const { return seqs.empty(); }
};

// What one sequence produced in a step, or its final word.
struct SeqOutput {
  std::string request_id;
  SeqId seq_id;
  int index = 0;                    // the choice (Sequence::choice_index)
  int32_t output_slot = -1;         // Sequence::output_slot
  std::vector<int32_t> new_tokens;  // the token sampled this step (empty for an abort)
  FinishReason finish_reason = FinishReason::kNone;  // kNone while it runs
  // Usage of this choice, cumulative.
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_prompt_tokens = 0;  // prompt tokens served by the prefix cache
};

struct SchedulerStats {
  int num_running = 0;
  int num_waiting = 0;  // preempted ones included
  int64_t used_blocks = 0;
  int64_t total_blocks = 0;
  int64_t prefix_cache_queries = 0;  // tokens
  int64_t prefix_cache_hits = 0;     // tokens
  int64_t num_preemptions = 0;       // since start
};

class Scheduler {
 public:
  // Requires config.Validate().ok() and cache_config.Validate().ok().
  // `hash_fn`: see BlockManager.
  Scheduler(const SchedulerConfig& config, const CacheConfig& cache_config,
            BlockManager::HashFn hash_fn = &HashBlock);

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Admission. Takes a new sequence (WAITING, no output, nothing computed) and
  // queues it; the Scheduler owns it from now on. Refuses, naming the field
  // and the limit:
  //   INVALID_ARGUMENT   empty request_id or prompt; max_tokens < 1; n outside
  //                      [1, max_num_seqs]; prompt +
  //                      max_tokens > max_model_len; prompt + max_tokens needs
  //                      more blocks than the whole KV pool; (chunked prefill
  //                      off) prompt + max_tokens - 1 > max_num_batched_tokens
  //   ALREADY_EXISTS     request_id of an unfinished request
  //   RESOURCE_EXHAUSTED the waiting queue holds max_waiting requests
  absl::Status AddRequest(std::unique_ptr<Sequence> seq);

  // Plans the next step (see the policy above). The result is valid until the
  // next Schedule(); pass it to Update() once the model ran it, or call
  // AbandonStep() if it did not run. Until then the step is "in flight":
  // Schedule() and Abort() abort the process. An empty plan is not in flight
  // (it changed nothing); Update() on it is allowed and only flushes aborts.
  const SchedulerOutput& Schedule();

  // Applies a step that ran. `output` is what the latest Schedule() returned
  // (or a copy of it); `sampled` holds 1 + forks tokens per scheduled seq with
  // sample == true, in order (output.num_sampled of them; a fork's are its
  // choices 0, 1, ..., n-1). Advances each seq's computed tokens, registers
  // newly full blocks in the prefix cache and appends the sampled tokens.
  // Returns one SeqOutput per sequence that got a token (finish_reason kNone:
  // whether the token ends it is the caller's decision, see FinishChoice),
  // then the final outputs of sequences aborted since the last
  // Update()/TakeAbortedOutputs(). A fork gives one SeqOutput per choice, in
  // choice order, so the outputs that carry tokens are in the order of
  // `sampled`. The span is valid until the next Update(). A sequence
  // scheduled at its length (prompt + max_tokens tokens, not finished after
  // the Update() that gave its last token) aborts the process.
  std::span<const SeqOutput> Update(const SchedulerOutput& output,
                                    std::span<const int32_t> sampled);

  // Ends choice `index` of `request_id`, which the latest Update()'s token
  // finished (`reason`: EOS, a stop token or string, its length; decided by
  // the OutputProcessor): frees its blocks now and forgets the request with
  // its last choice. No output: the caller holds the final one (the token's).
  // Requires reason != kNone and no step in flight. False (and nothing
  // happens) when that choice is unknown or already finished.
  bool FinishChoice(absl::string_view request_id, int index, FinishReason reason);

  // Call instead of Update() when the step did not run (e.g. the forward
  // failed): nothing counts as computed, the plan is dropped, the state stays
  // consistent (blocks allocated for the step stay with their sequences). The
  // engine may then Abort() or Schedule() again. A no-op without a step in
  // flight.
  void AbandonStep();

  // Cancels a waiting, running or preempted request (every unfinished choice)
  // and frees its blocks; one final SeqOutput per choice that had not ended
  // (all n when it had not forked yet).
  // False (and nothing happens) for an unknown or already finished id.
  // Requires reason != kNone, and no step in flight (not between Schedule()
  // and its Update()/AbandonStep()). The final SeqOutput (reason, usage) comes
  // from the next Update() or TakeAbortedOutputs(), whichever is first.
  bool Abort(absl::string_view request_id, FinishReason reason = FinishReason::kAbort);
  // Cancels one choice of a request, like Abort (its final SeqOutput comes
  // the same way; a choice the caller found finished goes through
  // FinishChoice instead); choice 0 of a request that has not forked ends
  // the whole request. False
  // when that choice is unknown or already finished.
  bool AbortChoice(absl::string_view request_id, int index, FinishReason reason);

  // Final outputs of the requests aborted since the last Update() or call.
  std::vector<SeqOutput> TakeAbortedOutputs();

  // KV events for the router (see BlockManager::TakeEvents); drain every step.
  std::vector<KvEvent> TakeKvEvents() { return block_manager_.TakeEvents(); }

  int num_running() const { return static_cast<int>(running_.size()); }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  // Something is waiting or running (aborted outputs not yet taken excluded).
  bool has_unfinished() const { return !running_.empty() || !waiting_.empty(); }
  bool has_aborted_outputs() const { return !aborted_outputs_.empty(); }
  // The sequence the unfinished request `request_id` entered as (choice 0,
  // possibly finished while other choices run), or null.
  const Sequence* Find(absl::string_view request_id) const;
  // Choice `index` of the unfinished request `request_id` (finished or not),
  // or null (unknown, or not forked yet).
  const Sequence* FindChoice(absl::string_view request_id, int index) const;
  const BlockManager& block_manager() const { return block_manager_; }
  SchedulerStats stats() const;
  const SchedulerConfig& config() const { return config_; }

  // Checks the bookkeeping: the block pool against the running sequences'
  // tables (BlockManager::CheckInvariants), that waiting sequences hold no
  // blocks, statuses match queues, queues are in policy order and the running
  // set is within max_num_seqs. INTERNAL on the first violation. For tests.
  absl::Status CheckInvariants() const;

 private:
  // True when `a` is more important than `b` under the policy.
  bool Before(const Sequence* a, const Sequence* b) const;
  void InsertRunning(Sequence* seq);
  void InsertWaiting(Sequence* seq);
  // One request: the sequence it entered as and, once forked, its other
  // choices (index i - 1 holds choice i); kept until every choice finished.
  struct Request {
    std::unique_ptr<Sequence> first;
    std::vector<std::unique_ptr<Sequence>> forks;
    int unfinished = 1;  // choices not finished (1 before the fork)
  };

  void Preempt(Sequence* victim);
  SeqOutput& NextOutput();
  static void FillUsage(const Sequence& seq, SeqOutput& out);
  // The slots `seq` needs to be admitted: n while a fork is pending, else 1.
  static int SlotsFor(const Sequence& seq) { return seq.fork_pending() ? seq.params().n : 1; }
  // Appends `token`'s output for `seq` (whose last token it is).
  void EmitToken(const Sequence& seq, int32_t token);
  // Choice `index` of `req` (finished or not), or null (not forked yet, or
  // out of range).
  static Sequence* ChoiceOf(const Request& req, int index);
  // Creates choices 1..tokens.size() of `parent`'s request, sharing its
  // blocks, each RUNNING with its first token appended.
  void ForkChoices(Sequence& parent, std::span<const int32_t> tokens);
  // Takes one unfinished choice out of the queues, frees its blocks and
  // finishes it.
  void EndSeq(Sequence& seq, FinishReason reason);
  // EndSeq, and queues its final output.
  void AbortSeq(Sequence& seq, FinishReason reason);

  const SchedulerConfig config_;
  BlockManager block_manager_;

  absl::flat_hash_map<std::string, Request> requests_;  // unfinished, by id
  std::vector<Sequence*> running_;                      // in priority order (Before)
  std::deque<Sequence*> waiting_;                       // in priority order (Before)
  uint64_t next_arrival_ = 0;
  // Slots held for the choices of running requests not yet forked: the sum
  // of n - 1 over running sequences with fork_pending().
  int reserved_slots_ = 0;

  SchedulerOutput plan_;
  bool step_in_flight_ = false;
  std::vector<SeqOutput> outputs_;  // reused; the first num_outputs_ are live
  size_t num_outputs_ = 0;
  std::vector<SeqOutput> aborted_outputs_;
  int64_t num_preemptions_ = 0;
};

}  // namespace tessera
