#include "worker/engine/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/strings/str_cat.h"

namespace tessera {

Scheduler::Scheduler(const SchedulerConfig& config, const CacheConfig& cache_config,
                     BlockManager::HashFn hash_fn)
    : config_(config), block_manager_(cache_config, hash_fn) {
  TESSERA_CHECK(config_.Validate().ok(), config_.Validate().message());
  running_.reserve(config_.max_num_seqs);
  plan_.seqs.reserve(config_.max_num_seqs);
  outputs_.reserve(config_.max_num_seqs);
  requests_.reserve(config_.max_num_seqs);
}

bool Scheduler::Before(const Sequence* a, const Sequence* b) const {
  switch (config_.policy) {
    case SchedulingPolicy::kFcfs:
      break;
    case SchedulingPolicy::kPriority:
      if (a->priority() != b->priority()) return a->priority() < b->priority();
      break;
  }
  return a->arrival_order() < b->arrival_order();
}

void Scheduler::InsertRunning(Sequence* seq) {
  auto less = [this](const Sequence* a, const Sequence* b) { return Before(a, b); };
  running_.insert(std::upper_bound(running_.begin(), running_.end(), seq, less), seq);
}

void Scheduler::InsertWaiting(Sequence* seq) {
  // New arrivals under fcfs land at the back: O(1).
  if (waiting_.empty() || !Before(seq, waiting_.back())) {
    waiting_.push_back(seq);
    return;
  }
  auto less = [this](const Sequence* a, const Sequence* b) { return Before(a, b); };
  waiting_.insert(std::upper_bound(waiting_.begin(), waiting_.end(), seq, less), seq);
}

void Scheduler::Preempt(Sequence* victim) {
  block_manager_.Free(*victim);
  if (victim->fork_pending()) reserved_slots_ -= victim->params().n - 1;
  victim->SetPreempted();
  InsertWaiting(victim);
  plan_.preempted.push_back(victim->request_id());
  ++num_preemptions_;
}

const SchedulerOutput& Scheduler::Schedule() {
  TESSERA_CHECK(!step_in_flight_, "Schedule() twice without Update()/AbandonStep()");
  ++plan_.step;
  plan_.seqs.clear();
  plan_.preempted.clear();
  int budget = config_.max_num_batched_tokens;
  bool preempted = false;

  // 1. Running sequences, most important first. Victims come off the back, so
  //    a victim is never one already scheduled in this step.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i];
    int n = seq->num_tokens() - seq->num_computed_tokens();
    TESSERA_CHECK(n >= 1, seq->request_id(), ": running with nothing to compute");
    if (n > budget) {
      if (!config_.enable_chunked_prefill) {
        ++i;
        continue;
      }
      n = budget;
    }
    bool allocated = true;
    while (!block_manager_.AllocateSlots(*seq, n)) {
      Sequence* victim = running_.back();
      running_.pop_back();
      Preempt(victim);
      preempted = true;
      if (victim == seq) {
        allocated = false;
        break;
      }
    }
    if (!allocated) break;  // it was the last running sequence
    const int start = seq->num_computed_tokens();
    const bool sample = start + n == seq->num_tokens();
    plan_.seqs.push_back(
        {seq, start, n, sample, sample && seq->fork_pending() ? seq->params().n - 1 : 0});
    budget -= n;
    ++i;
  }

  // 2. Waiting sequences in policy order, without preempting anyone.
  while (!preempted && !waiting_.empty() && budget > 0 &&
         static_cast<int>(running_.size()) + reserved_slots_ < config_.max_num_seqs) {
    Sequence* seq = waiting_.front();
    // A request that will fork needs a slot for each of its choices.
    if (seq->fork_pending() &&
        static_cast<int>(running_.size()) + reserved_slots_ + SlotsFor(*seq) >
            config_.max_num_seqs) {
      break;
    }
    int n = seq->num_tokens() - block_manager_.GetCachedPrefixTokens(*seq);
    if (n > budget) {
      if (!config_.enable_chunked_prefill) break;
      n = budget;
    }
    if (!block_manager_.AllocateSlots(*seq, n)) break;
    waiting_.pop_front();
    if (seq->status() == SequenceStatus::kPreempted) seq->SetWaiting();
    seq->SetRunning();
    InsertRunning(seq);
    if (seq->fork_pending()) reserved_slots_ += seq->params().n - 1;
    const int start = seq->num_computed_tokens();
    const bool sample = start + n == seq->num_tokens();
    plan_.seqs.push_back(
        {seq, start, n, sample, sample && seq->fork_pending() ? seq->params().n - 1 : 0});
    budget -= n;
  }
  if (block_manager_.has_copies()) {
    plan_.block_copies = block_manager_.TakeCopies();
  } else {
    plan_.block_copies.clear();
  }

  plan_.total_tokens = config_.max_num_batched_tokens - budget;
  plan_.num_sampled = plan_.num_decode = plan_.num_prefill = 0;
  for (const ScheduledSeq& s : plan_.seqs) {
    plan_.num_sampled += s.sample + s.forks;
    if (s.sample && s.num_tokens == 1) {
      ++plan_.num_decode;
    } else {
      ++plan_.num_prefill;
    }
  }
  // An empty plan changed nothing and needs no Update().
  step_in_flight_ = !plan_.seqs.empty();
  return plan_;
}

void Scheduler::AbandonStep() {
  step_in_flight_ = false;
  plan_.seqs.clear();
  // The copies did not run; the blocks they fill stay with their sequences.
  if (!plan_.block_copies.empty()) block_manager_.RestoreCopies(std::move(plan_.block_copies));
  plan_.block_copies.clear();
}

SeqOutput& Scheduler::NextOutput() {
  if (num_outputs_ == outputs_.size()) outputs_.emplace_back();
  return outputs_[num_outputs_++];
}

void Scheduler::FillUsage(const Sequence& seq, SeqOutput& out) {
  out.prompt_tokens = seq.num_prompt_tokens();
  out.completion_tokens = seq.num_output_tokens();
  // A continued request's cache hit may reach into its (primed) output.
  out.cached_prompt_tokens = std::clamp(seq.num_cached_tokens(), 0, seq.num_prompt_tokens());
}

// Inlined: it runs once per sampled token, the hot path of every step.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Scheduler::EmitToken(const Sequence& seq, int32_t token) {
  SeqOutput& out = NextOutput();
  out.request_id.assign(seq.request_id());
  out.seq_id = seq.id();
  out.index = seq.choice_index();
  out.output_slot = seq.output_slot();
  out.new_tokens.clear();
  out.new_tokens.push_back(token);
  out.finish_reason = FinishReason::kNone;
  FillUsage(seq, out);
}

std::span<const SeqOutput> Scheduler::Update(const SchedulerOutput& output,
                                             std::span<const int32_t> sampled) {
  TESSERA_CHECK(output.step == plan_.step && (step_in_flight_ || output.seqs.empty()),
                "Update() takes the output of the latest Schedule(), once");
  step_in_flight_ = false;
  TESSERA_CHECK(sampled.size() == static_cast<size_t>(output.num_sampled), "Update() got ",
                sampled.size(), " sampled tokens for ", output.num_sampled, " sampling seqs");
  num_outputs_ = 0;
  size_t next_sample = 0;
  const size_t num_scheduled = output.seqs.size();
  for (size_t i = 0; i < num_scheduled; ++i) {
    const ScheduledSeq& s = output.seqs[i];
    Sequence& seq = *s.seq;
    TESSERA_CHECK(seq.num_computed_tokens() == s.start, seq.request_id(), ": computed ",
                  seq.num_computed_tokens(), " tokens, scheduled from ", s.start);
    seq.set_num_computed_tokens(s.start + s.num_tokens);
    block_manager_.CacheComputedBlocks(seq);
    if (!s.sample) continue;
    // Its length was reached with its last token: the caller had to finish it.
    TESSERA_CHECK(seq.num_tokens() < seq.max_total_tokens(), seq.request_id(), "/",
                  seq.choice_index(), ": scheduled at its length (", seq.num_tokens(),
                  " tokens); FinishChoice() was not called after its last token");
    const int32_t token = sampled[next_sample++];
    seq.AppendToken(token);
    if (s.forks == 0) {
      EmitToken(seq, token);
      continue;
    }
    // The fork: the choices share the blocks before any of them can finish.
    const std::span<const int32_t> fork_tokens = sampled.subspan(next_sample, s.forks);
    next_sample += s.forks;
    ForkChoices(seq, fork_tokens);
    EmitToken(seq, token);
    const Request& req = requests_.find(seq.request_id())->second;
    for (int c = 0; c < s.forks; ++c) EmitToken(*req.forks[c], fork_tokens[c]);
  }
  for (SeqOutput& aborted : aborted_outputs_) NextOutput() = std::move(aborted);
  aborted_outputs_.clear();
  return std::span<const SeqOutput>(outputs_.data(), num_outputs_);
}

void Scheduler::ForkChoices(Sequence& parent, std::span<const int32_t> tokens) {
  Request& req = requests_.find(parent.request_id())->second;
  TESSERA_CHECK(parent.fork_pending() && req.forks.empty() &&
                    static_cast<int>(tokens.size()) == parent.params().n - 1,
                parent.request_id(), ": fork of ", tokens.size(),
                " choices with n = ", parent.params().n);
  parent.ClearForkPending();
  reserved_slots_ -= static_cast<int>(tokens.size());
  req.forks.reserve(tokens.size());
  for (size_t c = 0; c < tokens.size(); ++c) {
    std::unique_ptr<Sequence> child = Sequence::ForkOf(parent, static_cast<int>(c) + 1);
    block_manager_.Fork(parent, *child);
    child->SetRunning();
    child->AppendToken(tokens[c]);
    InsertRunning(child.get());
    req.forks.push_back(std::move(child));
    ++req.unfinished;
  }
}

}  // namespace tessera
