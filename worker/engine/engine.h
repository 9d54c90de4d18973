// The leader's engine: one step = schedule -> broadcast the step plan ->
// forward on every rank -> sample on rank 0 -> update the sequences -> the
// output processor (stop tokens, length, text, stop strings;
// worker/engine/output_processor.h) -> finish the choices it ended.
//
// Not thread-safe: a single engine thread owns it (the gRPC server hands it
// work through a queue; tessera-generate calls it directly).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/api/request_limits.h"
#include "common/api/sampling_params.h"
#include "common/config.h"
#include "common/tokenizer.h"
#include "tessera/v1/step_plan.pb.h"
#include "worker/comm/communicator.h"
#include "worker/engine/output_processor.h"
#include "worker/engine/request_output.h"
#include "worker/engine/scheduler.h"
#include "worker/exec/model_executor.h"
#include "worker/exec/sampler.h"

namespace tessera {

struct EngineStats {
  int64_t steps = 0;
  int64_t prompt_tokens_computed = 0;  // prefill tokens run through the model
  int64_t tokens_generated = 0;
  // Steps in which every scheduled sequence decoded one token, and the
  // sequences those steps ran (decode_seqs / decode_steps: the mean batch).
  int64_t decode_steps = 0;
  int64_t decode_seqs = 0;
  int max_seqs_per_step = 0;  // the largest batch of one step
  int64_t block_copies = 0;   // KV blocks copied on write (forked choices)
  int64_t forks = 0;          // choices forked from a prefilled prompt (n - 1 per request)
  // The latest Step(): sequences it ran and tokens it scheduled (0 and 0 when it ran none).
  int last_step_seqs = 0;
  int last_step_tokens = 0;
};

class Engine {
 public:
  // `executor` and `comm` must outlive the engine; `comm.rank()` must be 0.
  // `limits`: what AddRequest checks requests against (the replica's, the
  // same the service admits with). `tokenizer` (may be null: no text, no
  // stop strings) turns outputs into text; it must outlive the engine.
  Engine(const SchedulerConfig& sched, const CacheConfig& cache, std::vector<int32_t> eos_ids,
         api::RequestLimits limits, const Tokenizer* tokenizer, ModelExecutor& executor,
         Communicator& comm);

  // Validates against the limits (api::ValidateTokensAndParams:
  // INVALID_ARGUMENT naming the field and the limit: sampling params, token
  // ids outside the vocabulary, lengths) and queues the request. With
  // params.n > 1 the prompt is prefilled once and forked into n choices
  // (see Scheduler), choice i sampling with seed + i when a seed is given,
  // else with a seed of its own drawn here. A continued request
  // (request.continued_output / continued_choices,
  // worker/engine/continuation.h) is checked by ValidateContinuation and
  // resumes after its delivered output; with n > 1 each unfinished choice
  // runs as a sequence of its own (n = 1, seed + index) under an internal id,
  // and Step() gives its outputs the request's id and the choice's index, so
  // the caller sees one request with request.choices() choices. ALREADY_EXISTS
  // while a request with the same id has not given its final outputs (an
  // aborted one until the next Step()), and the scheduler's refusals
  // (Scheduler::AddRequest).
  absl::Status AddRequest(EngineRequest request);
  // Ends a request in any state (every choice); its final outputs (reason
  // kAbort, one per unfinished choice) come with the next Step(). False when
  // the id is unknown or already finished.
  bool Abort(const std::string& request_id, FinishReason reason = FinishReason::kAbort);

  // Runs one step (nothing when idle) and returns what it produced, through
  // the output processor: finish reasons (EOS, stop tokens, length), text
  // when asked, and a request whose text reached a stop string ends there
  // (finish reason kStop); a finished choice's blocks are freed before this
  // returns. An error
  // means a collective or the forward pass failed (e.g. a rank is gone): the
  // step is abandoned and the replica should be torn down.
  absl::StatusOr<std::vector<RequestOutput>> Step();
  bool HasUnfinished() const { return scheduler_.has_unfinished(); }

  // Receives the prefix cache's stored/evicted block events after each step
  // (for WatchKvEvents). Without a sink they are dropped.
  void set_kv_event_sink(std::function<void(std::vector<KvEvent>)> sink) {
    kv_event_sink_ = std::move(sink);
  }

  // Tells the follower ranks to leave their loop. Call once, at the end.
  absl::Status Shutdown();

  const Scheduler& scheduler() const { return scheduler_; }
  const EngineStats& stats() const { return stats_; }

 private:
  // Queues one sequence (n choices forked from it when n > 1); `r` is
  // validated.
  absl::Status AddSequence(EngineRequest r);
  // A continuation with n > 1 (r.continued_choices, validated): one n = 1
  // sequence per choice, all or none.
  absl::Status AddContinuedChoices(EngineRequest r);
  // Gives the outputs of a split continuation's sequences their request's id
  // and choice index (drops those of a request whose admission failed).
  void MapChoiceOutputs(std::vector<RequestOutput>& outputs);
  // Whether `request_id` names a request that has not given its final
  // outputs (an aborted one until the next Step()).
  bool InUse(const std::string& request_id) const {
    return output_processor_.contains(request_id) || split_.contains(request_id);
  }

  // A continued n > 1 request split into one sequence per choice: its
  // sequences' internal ids (those without a final output yet), and for each
  // internal id the request and the choice it runs.
  struct Split {
    std::vector<std::string> unfinished;
    bool admitted = true;  // false: admission failed half way; outputs dropped
  };
  struct ChoiceSeq {
    std::string request_id;
    int index = 0;
  };
  absl::flat_hash_map<std::string, Split> split_;
  absl::flat_hash_map<std::string, ChoiceSeq> choice_seqs_;

  Scheduler scheduler_;
  ModelExecutor& executor_;
  Communicator& comm_;
  Sampler sampler_;
  OutputProcessor output_processor_;
  int block_size_;
  const api::RequestLimits limits_;
  int64_t next_seq_id_ = 0;
  int64_t step_ = 0;
  std::mt19937_64 seed_rng_;
  EngineStats stats_;
  std::function<void(std::vector<KvEvent>)> kv_event_sink_;
  // Reused across steps.
  v1::StepPlan plan_;
  std::string plan_bytes_;
  std::vector<SamplingRow> rows_;
  std::vector<int32_t> sampled_;
  std::vector<uint8_t> wants_logprobs_;  // per sampled row
};

}  // namespace tessera
