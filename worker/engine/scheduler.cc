#include "worker/engine/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera {

Scheduler::Scheduler(const SchedulerConfig& config, const CacheConfig& cache_config,
                     std::vector<int32_t> eos_token_ids, BlockManager::HashFn hash_fn)
    : config_(config),
      eos_token_ids_(std::move(eos_token_ids)),
      block_manager_(cache_config, hash_fn) {
  TESSERA_CHECK(config_.Validate().ok(), config_.Validate().message());
  running_.reserve(config_.max_num_seqs);
  plan_.seqs.reserve(config_.max_num_seqs);
  outputs_.reserve(config_.max_num_seqs);
  finished_.reserve(config_.max_num_seqs);
  seqs_.reserve(config_.max_num_seqs);
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

absl::Status Scheduler::AddRequest(std::unique_ptr<Sequence> seq) {
  if (seq == nullptr) return absl::InvalidArgumentError("AddRequest: null sequence");
  const std::string& id = seq->request_id();
  if (id.empty()) return absl::InvalidArgumentError("request_id must not be empty");
  if (seq->status() != SequenceStatus::kWaiting || seq->num_output_tokens() != 0 ||
      seq->num_computed_tokens() != 0 || !seq->block_table().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request ", id, ": AddRequest takes a new sequence, got one ",
        SequenceStatusName(seq->status()), " with ", seq->num_output_tokens(), " output tokens"));
  }
  const int prompt = seq->num_prompt_tokens();
  const int max_tokens = seq->params().max_tokens;
  if (prompt == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("request ", id, ": prompt must contain at least 1 token"));
  }
  if (max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("request ", id, ": max_tokens must be at least 1, got ", max_tokens));
  }
  const int64_t total = int64_t{prompt} + max_tokens;
  if (total > config_.max_model_len) {
    return absl::InvalidArgumentError(
        absl::StrCat("request ", id, ": prompt (", prompt, " tokens) + max_tokens (", max_tokens,
                     ") = ", total, " exceeds max_model_len (", config_.max_model_len, ")"));
  }
  const int block_size = block_manager_.block_size();
  const int64_t blocks = (total + block_size - 1) / block_size;
  if (blocks > block_manager_.num_blocks()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request ", id, ": prompt (", prompt, " tokens) + max_tokens (", max_tokens,
                     ") needs ", blocks, " KV blocks but the KV cache capacity is ",
                     block_manager_.num_blocks(), " blocks of ", block_size, " tokens (",
                     int64_t{block_manager_.num_blocks()} * block_size, " tokens)"));
  }
  // Without chunked prefill a recompute after preemption runs prompt + output
  // (up to total - 1 tokens) in one step.
  if (!config_.enable_chunked_prefill && total - 1 > config_.max_num_batched_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("request ", id, ": prompt (", prompt, " tokens) + max_tokens (", max_tokens,
                     ") - 1 exceeds max_num_batched_tokens (", config_.max_num_batched_tokens,
                     ") and chunked prefill is disabled"));
  }
  if (seqs_.contains(id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("request_id '", id, "' is already in use by an unfinished request"));
  }
  if (static_cast<int>(waiting_.size()) >= config_.max_waiting) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "request ", id, ": the waiting queue is full (max_waiting = ", config_.max_waiting, ")"));
  }
  seq->set_arrival_order(next_arrival_++);
  seq->ReserveOutput();
  Sequence* raw = seq.get();
  seqs_.emplace(id, std::move(seq));
  InsertWaiting(raw);
  return absl::OkStatus();
}

void Scheduler::Preempt(Sequence* victim) {
  block_manager_.Free(*victim);
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
    plan_.seqs.push_back({seq, start, n, start + n == seq->num_tokens()});
    budget -= n;
    ++i;
  }

  // 2. Waiting sequences in policy order, without preempting anyone.
  while (!preempted && !waiting_.empty() && budget > 0 &&
         static_cast<int>(running_.size()) < config_.max_num_seqs) {
    Sequence* seq = waiting_.front();
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
    const int start = seq->num_computed_tokens();
    plan_.seqs.push_back({seq, start, n, start + n == seq->num_tokens()});
    budget -= n;
  }

  plan_.total_tokens = config_.max_num_batched_tokens - budget;
  plan_.num_sampled = plan_.num_decode = plan_.num_prefill = 0;
  for (const ScheduledSeq& s : plan_.seqs) {
    plan_.num_sampled += s.sample;
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
}

FinishReason Scheduler::CheckStop(const Sequence& seq, int32_t token) const {
  if (!seq.ignore_eos() &&
      std::find(eos_token_ids_.begin(), eos_token_ids_.end(), token) != eos_token_ids_.end()) {
    return FinishReason::kEos;
  }
  if (seq.has_stop_token_ids()) {
    const std::vector<int32_t>& stop = seq.params().stop_token_ids;
    if (std::find(stop.begin(), stop.end(), token) != stop.end()) return FinishReason::kStop;
  }
  if (seq.num_tokens() >= seq.max_total_tokens() || seq.num_tokens() >= config_.max_model_len) {
    return FinishReason::kLength;
  }
  return FinishReason::kNone;
}

SeqOutput& Scheduler::NextOutput() {
  if (num_outputs_ == outputs_.size()) outputs_.emplace_back();
  return outputs_[num_outputs_++];
}

void Scheduler::FillUsage(const Sequence& seq, SeqOutput& out) {
  out.prompt_tokens = seq.num_prompt_tokens();
  out.completion_tokens = seq.num_output_tokens();
  out.cached_prompt_tokens = std::max(0, seq.num_cached_tokens());
}

std::span<const SeqOutput> Scheduler::Update(const SchedulerOutput& output,
                                             std::span<const int32_t> sampled) {
  TESSERA_CHECK(output.step == plan_.step && (step_in_flight_ || output.seqs.empty()),
                "Update() takes the output of the latest Schedule(), once");
  step_in_flight_ = false;
  TESSERA_CHECK(sampled.size() == static_cast<size_t>(output.num_sampled), "Update() got ",
                sampled.size(), " sampled tokens for ", output.num_sampled, " sampling seqs");
  num_outputs_ = 0;
  finished_.clear();
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
    const int32_t token = sampled[next_sample++];
    seq.AppendToken(token);
    const FinishReason reason = CheckStop(seq, token);
    SeqOutput& out = NextOutput();
    out.request_id.assign(seq.request_id());
    out.seq_id = seq.id();
    out.new_tokens.clear();
    out.new_tokens.push_back(token);
    out.finish_reason = reason;
    FillUsage(seq, out);
    if (reason != FinishReason::kNone) {
      block_manager_.Free(seq);
      seq.SetFinished(reason);
      finished_.push_back(&seq);
    }
  }
  if (!finished_.empty()) {
    for (const Sequence* seq : finished_) {
      running_.erase(std::find(running_.begin(), running_.end(), seq));
      seqs_.erase(seqs_.find(seq->request_id()));  // destroys it
    }
  }
  for (SeqOutput& aborted : aborted_outputs_) NextOutput() = std::move(aborted);
  aborted_outputs_.clear();
  return std::span<const SeqOutput>(outputs_.data(), num_outputs_);
}

bool Scheduler::Abort(absl::string_view request_id, FinishReason reason) {
  TESSERA_CHECK(reason != FinishReason::kNone, "Abort(", request_id, ") without a reason");
  TESSERA_CHECK(!step_in_flight_, "Abort(", request_id, ") between Schedule() and Update()");
  const auto it = seqs_.find(request_id);
  if (it == seqs_.end()) return false;
  Sequence* seq = it->second.get();
  switch (seq->status()) {
    case SequenceStatus::kWaiting:
    case SequenceStatus::kPreempted:
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), seq));
      break;
    case SequenceStatus::kRunning:
      running_.erase(std::find(running_.begin(), running_.end(), seq));
      block_manager_.Free(*seq);
      break;
    case SequenceStatus::kFinished:
      TESSERA_CHECK(false, seq->request_id(), ": finished but still tracked");
      break;
  }
  seq->SetFinished(reason);
  SeqOutput& out = aborted_outputs_.emplace_back();
  out.request_id = seq->request_id();
  out.seq_id = seq->id();
  out.finish_reason = reason;
  FillUsage(*seq, out);
  seqs_.erase(it);
  return true;
}

std::vector<SeqOutput> Scheduler::TakeAbortedOutputs() {
  std::vector<SeqOutput> out;
  out.swap(aborted_outputs_);
  return out;
}

const Sequence* Scheduler::Find(absl::string_view request_id) const {
  const auto it = seqs_.find(request_id);
  return it == seqs_.end() ? nullptr : it->second.get();
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.num_running = num_running();
  s.num_waiting = num_waiting();
  s.used_blocks = block_manager_.num_used_blocks();
  s.total_blocks = block_manager_.num_blocks();
  s.prefix_cache_queries = block_manager_.prefix_cache_queries();
  s.prefix_cache_hits = block_manager_.prefix_cache_hits();
  s.num_preemptions = num_preemptions_;
  return s;
}

absl::Status Scheduler::CheckInvariants() const {
  auto fail = [](auto&&... args) { return absl::InternalError(absl::StrCat(args...)); };
  if (static_cast<int>(running_.size()) > config_.max_num_seqs) {
    return fail(running_.size(), " running sequences, max_num_seqs is ", config_.max_num_seqs);
  }
  if (seqs_.size() != running_.size() + waiting_.size()) {
    return fail(seqs_.size(), " tracked sequences but ", running_.size(), " running + ",
                waiting_.size(), " waiting");
  }
  for (size_t i = 0; i < running_.size(); ++i) {
    const Sequence* seq = running_[i];
    if (seq->status() != SequenceStatus::kRunning) {
      return fail(seq->request_id(), " is ", SequenceStatusName(seq->status()),
                  " in the running set");
    }
    if (i > 0 && Before(seq, running_[i - 1])) return fail("running set out of order at ", i);
    if (Find(seq->request_id()) != seq) return fail(seq->request_id(), " running but unknown");
  }
  for (size_t i = 0; i < waiting_.size(); ++i) {
    const Sequence* seq = waiting_[i];
    if (seq->status() != SequenceStatus::kWaiting && seq->status() != SequenceStatus::kPreempted) {
      return fail(seq->request_id(), " is ", SequenceStatusName(seq->status()),
                  " in the waiting queue");
    }
    if (!seq->block_table().empty() || seq->num_computed_tokens() != 0) {
      return fail(seq->request_id(), " waits holding ", seq->block_table().size(), " blocks");
    }
    if (i > 0 && Before(seq, waiting_[i - 1])) return fail("waiting queue out of order at ", i);
    if (Find(seq->request_id()) != seq) return fail(seq->request_id(), " waiting but unknown");
  }
  const std::vector<const Sequence*> holders(running_.begin(), running_.end());
  return block_manager_.CheckInvariants(holders);
}

}  // namespace tessera
