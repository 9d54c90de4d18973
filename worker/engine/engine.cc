#include "worker/engine/engine.h"

#include <algorithm>
#include <chrono>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/api/request_validation.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "worker/engine/continuation.h"
#include "worker/engine/step_plan.h"
#include "worker/exec/replica_protocol.h"

namespace tessera {
namespace {

RequestOutput ToRequestOutput(const SeqOutput& o) {
  RequestOutput ro;
  ro.request_id = o.request_id;
  ro.index = o.index;
  ro.output_slot = o.output_slot;
  ro.new_tokens = o.new_tokens;
  ro.finish_reason = o.finish_reason;
  ro.prompt_tokens = o.prompt_tokens;
  ro.completion_tokens = o.completion_tokens;
  ro.cached_prompt_tokens = o.cached_prompt_tokens;
  return ro;
}

absl::Status AlreadyInUse(const std::string& request_id) {
  return absl::AlreadyExistsError(
      absl::StrCat("request_id '", request_id, "' is already in use by an unfinished request"));
}

}  // namespace

Engine::Engine(const SchedulerConfig& sched, const CacheConfig& cache, std::vector<int32_t> eos_ids,
               api::RequestLimits limits, const Tokenizer* tokenizer, ModelExecutor& executor,
               Communicator& comm)
    : scheduler_(sched, cache),
      executor_(executor),
      comm_(comm),
      output_processor_(tokenizer, StopChecker(std::move(eos_ids), sched.max_model_len)),
      block_size_(cache.block_size),
      limits_(std::move(limits)),
      seed_rng_(std::random_device{}()) {}

absl::Status Engine::AddRequest(EngineRequest r) {
  RETURN_IF_ERROR(api::ValidateTokensAndParams(r.prompt_token_ids, r.params, limits_));
  // An aborted request leaves the scheduler at once but its final outputs
  // come with the next Step(): until then its id is not free.
  if (InUse(r.request_id)) return AlreadyInUse(r.request_id);
  RETURN_IF_ERROR(ValidateContinuation(r.continued_output, r.continued_choices, r.params, limits_));
  if (!r.continued_choices.empty()) return AddContinuedChoices(std::move(r));
  return AddSequence(std::move(r));
}

absl::Status Engine::AddSequence(EngineRequest r) {
  const uint64_t seed = r.params.seed.has_value() ? *r.params.seed : seed_rng_();
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
  auto seq = std::make_unique<Sequence>(std::move(r.request_id), SeqId(next_seq_id_++),
                                        std::move(r.prompt_token_ids), std::move(r.params),
                                        r.priority, now_ns);
  seq->set_rng_seed(seed);
  if (!r.continued_output.empty()) seq->PrimeOutput(r.continued_output);
  const int n = seq->params().n;
  if (n > 1) {
    std::vector<uint64_t> seeds(n - 1);
    for (int c = 1; c < n; ++c) {
      seeds[c - 1] = seq->params().seed.has_value() ? seed + static_cast<uint64_t>(c) : seed_rng_();
    }
    seq->set_choice_seeds(std::move(seeds));
  }
  std::string id = seq->request_id();
  const SamplingParams params = seq->params();
  // The prompt's last tokens: the text of the output continues from them.
  const std::span<const int32_t> prompt = seq->prompt_tokens();
  const size_t context = std::min<size_t>(prompt.size(), OutputProcessor::kPromptContextTokens);
  const std::vector<int32_t> prompt_tail(prompt.end() - static_cast<std::ptrdiff_t>(context),
                                         prompt.end());
  seq->set_output_slot(output_processor_.Add(id, prompt_tail, params, r.return_text));
  if (const absl::Status added = scheduler_.AddRequest(std::move(seq)); !added.ok()) {
    output_processor_.Remove(id);
    return added;
  }
  if (!r.continued_output.empty()) output_processor_.PrimeContinuation(id, r.continued_output);
  return absl::OkStatus();
}

absl::Status Engine::AddContinuedChoices(EngineRequest r) {
  const int choices = static_cast<int>(r.continued_choices.size());
  // All or none: the waiting queue is the one limit that differs between the
  // choices' admissions (the others are the request's, checked alike for each).
  const int room = scheduler_.config().max_waiting - scheduler_.num_waiting();
  if (choices > room) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request ", r.request_id, ": the waiting queue has room for ",
                     std::max(room, 0), " requests but the continuation has ", choices,
                     " unfinished choices (max_waiting = ", scheduler_.config().max_waiting, ")"));
  }
  // Choice i samples with seed + i, as the uninterrupted request's fork does.
  const uint64_t seed = r.params.seed.has_value() ? *r.params.seed : seed_rng_();
  Split& split = split_[r.request_id];
  for (ContinuedChoice& c : r.continued_choices) {
    EngineRequest one;
    // '\x1f' keeps the internal id apart from the request's own.
    one.request_id = absl::StrCat(r.request_id, "\x1f", c.index);
    one.prompt_token_ids = r.prompt_token_ids;
    one.params = r.params;
    one.params.n = 1;
    one.params.seed = seed + static_cast<uint64_t>(c.index);
    one.priority = r.priority;
    one.return_text = r.return_text;
    one.continued_output = std::move(c.output);
    const std::string id = one.request_id;
    const absl::Status added = InUse(id) ? AlreadyInUse(id) : AddSequence(std::move(one));
    if (!added.ok()) {
      // Not reachable after the first choice unless the scheduler's limits
      // changed; the choices already queued end, their outputs dropped.
      if (split.unfinished.empty()) {
        split_.erase(r.request_id);
      } else {
        split.admitted = false;
        for (const std::string& queued : split.unfinished) {
          scheduler_.Abort(queued, FinishReason::kAbort);
        }
      }
      return added;
    }
    split.unfinished.push_back(id);
    choice_seqs_[id] = ChoiceSeq{r.request_id, c.index};
  }
  return absl::OkStatus();
}

void Engine::MapChoiceOutputs(std::vector<RequestOutput>& outputs) {
  if (choice_seqs_.empty()) return;
  std::erase_if(outputs, [this](RequestOutput& o) {
    const auto seq = choice_seqs_.find(o.request_id);
    if (seq == choice_seqs_.end()) return false;
    const std::string internal = o.request_id;
    o.request_id = seq->second.request_id;
    o.index = seq->second.index;
    const auto split = split_.find(o.request_id);
    TESSERA_CHECK(split != split_.end(), internal, ": a choice of no split request");
    const bool drop = !split->second.admitted;
    if (o.finished()) {
      std::erase(split->second.unfinished, internal);
      if (split->second.unfinished.empty()) split_.erase(split);
      choice_seqs_.erase(seq);
    }
    return drop;
  });
}

bool Engine::Abort(const std::string& request_id, FinishReason reason) {
  const auto split = split_.find(request_id);
  if (split == split_.end()) return scheduler_.Abort(request_id, reason);
  bool aborted = false;
  for (const std::string& id : split->second.unfinished) {
    aborted = scheduler_.Abort(id, reason) || aborted;
  }
  return aborted;
}

absl::StatusOr<std::vector<RequestOutput>> Engine::Step() {
  std::vector<RequestOutput> results;
  const SchedulerOutput& out = scheduler_.Schedule();
  stats_.last_step_seqs = 0;
  stats_.last_step_tokens = 0;
  if (!out.seqs.empty()) {
    BuildStepPlan(out, block_size_, step_++, &plan_);
    absl::Status forward = SendStepPlan(comm_, plan_, plan_bytes_);
    if (forward.ok()) forward = executor_.Forward(plan_);
    if (!forward.ok()) {
      // The step did not happen: hand the scheduler its state back.
      scheduler_.AbandonStep();
      return forward;
    }

    rows_.clear();
    wants_logprobs_.clear();
    for (const ScheduledSeq& s : out.seqs) {
      if (!s.sample) continue;
      const Sequence& seq = *s.seq;
      const bool logprobs = seq.params().logprobs > 0;
      rows_.push_back(SamplingRow{&seq.params(), seq.prompt_tokens(), seq.output_tokens(),
                                  seq.rng_seed(), seq.num_output_tokens()});
      wants_logprobs_.push_back(logprobs);
      // A fork samples the same row for each other choice, with its own seed.
      for (int c = 1; c <= s.forks; ++c) {
        rows_.push_back(SamplingRow{&seq.params(), seq.prompt_tokens(), seq.output_tokens(),
                                    seq.choice_seed(c), seq.num_output_tokens()});
        wants_logprobs_.push_back(logprobs);
      }
    }
    // On the GPU only the token ids (and logprobs) come back to the host.
    absl::StatusOr<std::vector<SampleResult>> sampled = executor_.Sample(rows_, sampler_);
    if (!sampled.ok()) {
      scheduler_.AbandonStep();
      return sampled.status();
    }
    std::vector<SampleResult> samples = std::move(*sampled);
    sampled_.clear();
    for (const ScheduledSeq& s : out.seqs) {
      const Sequence& seq = *s.seq;
      const int start = seq.num_computed_tokens();
      stats_.prompt_tokens_computed +=
          std::max(0, std::min(seq.num_prompt_tokens(), start + s.num_tokens) - start);
      stats_.forks += s.forks;
    }
    for (const SampleResult& sample : samples) sampled_.push_back(sample.token);
    const int batch = static_cast<int>(out.seqs.size());
    stats_.steps++;
    stats_.tokens_generated += static_cast<int64_t>(sampled_.size());
    stats_.max_seqs_per_step = std::max(stats_.max_seqs_per_step, batch);
    stats_.last_step_seqs = batch;
    stats_.last_step_tokens = out.total_tokens;
    if (out.num_prefill == 0) {
      stats_.decode_steps++;
      stats_.decode_seqs += batch;
    }
    stats_.block_copies += static_cast<int64_t>(out.block_copies.size());

    // The outputs that carry a token come first, one per sampled row, in row
    // order (Scheduler::Update): logprobs go by position.
    size_t r = 0;
    for (const SeqOutput& o : scheduler_.Update(out, sampled_)) {
      RequestOutput ro = ToRequestOutput(o);
      if (!ro.new_tokens.empty()) {
        if (r < samples.size() && wants_logprobs_[r]) {
          ro.logprobs.push_back(std::move(samples[r]));
        }
        ++r;
      }
      results.push_back(std::move(ro));
    }
  }
  for (const SeqOutput& o : scheduler_.TakeAbortedOutputs()) results.push_back(ToRequestOutput(o));
  // Stop tokens, length, text and stop strings: the choices the output
  // processor ends leave the scheduler now, their blocks freed before the
  // next Schedule().
  for (const OutputProcessor::Finished& f : output_processor_.Process(results)) {
    const bool finished = scheduler_.FinishChoice(f.request_id, f.index, f.reason);
    TESSERA_CHECK(finished, f.request_id, "/", f.index, ": ended by the output processor but ",
                  "not running in the scheduler");
  }
  MapChoiceOutputs(results);
  std::vector<KvEvent> events = scheduler_.TakeKvEvents();
  if (kv_event_sink_ && !events.empty()) kv_event_sink_(std::move(events));
  return results;
}

absl::Status Engine::Shutdown() { return SendShutdown(comm_); }

}  // namespace tessera
