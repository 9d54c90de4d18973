// The Scheduler's admission, cancellation, lookups and invariant checks
// (worker/engine/scheduler.h); the step itself (Schedule, Update, the fork)
// is in scheduler.cc.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "worker/engine/scheduler.h"

namespace tessera {

absl::Status Scheduler::AddRequest(std::unique_ptr<Sequence> seq) {
  if (seq == nullptr) return absl::InvalidArgumentError("AddRequest: null sequence");
  const std::string& id = seq->request_id();
  if (id.empty()) return absl::InvalidArgumentError("request_id must not be empty");
  // A continued request (Sequence::PrimeOutput) arrives with output tokens.
  const bool continued = seq->num_output_tokens() != 0;
  if (seq->status() != SequenceStatus::kWaiting ||
      (continued &&
       (seq->params().n != 1 || seq->num_output_tokens() >= seq->params().max_tokens)) ||
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
  const int n = seq->params().n;
  if (n < 1 || n > config_.max_num_seqs || seq->choice_index() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("request ", id, ": sampling.n must be in [1, ",
                                                   config_.max_num_seqs, "] (max_num_seqs), got ",
                                                   n));
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
  if (requests_.contains(id)) {
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
  requests_[id].first = std::move(seq);
  InsertWaiting(raw);
  return absl::OkStatus();
}

void Scheduler::EndSeq(Sequence& seq, FinishReason reason) {
  switch (seq.status()) {
    case SequenceStatus::kWaiting:
    case SequenceStatus::kPreempted:
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &seq));
      break;
    case SequenceStatus::kRunning:
      running_.erase(std::find(running_.begin(), running_.end(), &seq));
      block_manager_.Free(seq);  // its blocks: active -> cached or free
      if (seq.fork_pending()) reserved_slots_ -= seq.params().n - 1;
      break;
    case SequenceStatus::kFinished:
      TESSERA_CHECK(false, seq.request_id(), ": ending a finished choice");
      break;
  }
  seq.SetFinished(reason);
}

void Scheduler::AbortSeq(Sequence& seq, FinishReason reason) {
  EndSeq(seq, reason);
  SeqOutput& out = aborted_outputs_.emplace_back();
  out.request_id = seq.request_id();
  out.seq_id = seq.id();
  out.index = seq.choice_index();
  out.output_slot = seq.output_slot();
  out.finish_reason = reason;
  FillUsage(seq, out);
}

bool Scheduler::Abort(absl::string_view request_id, FinishReason reason) {
  TESSERA_CHECK(reason != FinishReason::kNone, "Abort(", request_id, ") without a reason");
  TESSERA_CHECK(!step_in_flight_, "Abort(", request_id, ") between Schedule() and Update()");
  const auto it = requests_.find(request_id);
  if (it == requests_.end()) return false;
  Request& req = it->second;
  Sequence& first = *req.first;
  const bool unforked = first.fork_pending();
  if (!first.is_finished()) AbortSeq(first, reason);
  for (const std::unique_ptr<Sequence>& fork : req.forks) {
    if (!fork->is_finished()) AbortSeq(*fork, reason);
  }
  if (unforked) {
    // The choices that never started end here too, with no output of their own.
    for (int c = 1; c < first.params().n; ++c) {
      SeqOutput& out = aborted_outputs_.emplace_back();
      out.request_id = first.request_id();
      out.seq_id = first.id();
      out.index = c;
      out.output_slot = first.output_slot();
      out.finish_reason = reason;
      FillUsage(first, out);
      out.completion_tokens = 0;
    }
    first.ClearForkPending();
  }
  requests_.erase(it);
  return true;
}

bool Scheduler::AbortChoice(absl::string_view request_id, int index, FinishReason reason) {
  TESSERA_CHECK(reason != FinishReason::kNone, "AbortChoice(", request_id, ") without a reason");
  TESSERA_CHECK(!step_in_flight_, "AbortChoice(", request_id, ") between Schedule() and Update()");
  const auto it = requests_.find(request_id);
  if (it == requests_.end()) return false;
  Request& req = it->second;
  if (index == 0 && req.first->fork_pending()) return Abort(request_id, reason);
  Sequence* seq = ChoiceOf(req, index);
  if (seq == nullptr || seq->is_finished()) return false;
  AbortSeq(*seq, reason);
  if (--req.unfinished == 0) requests_.erase(it);
  return true;
}

bool Scheduler::FinishChoice(absl::string_view request_id, int index, FinishReason reason) {
  TESSERA_CHECK(reason != FinishReason::kNone, "FinishChoice(", request_id, ") without a reason");
  TESSERA_CHECK(!step_in_flight_, "FinishChoice(", request_id, ") between Schedule() and Update()");
  const auto it = requests_.find(request_id);
  if (it == requests_.end()) return false;
  Request& req = it->second;
  Sequence* seq = ChoiceOf(req, index);
  if (seq == nullptr || seq->is_finished()) return false;
  // A token of choice 0 is the fork's (Update() forks before it emits).
  TESSERA_CHECK(!seq->fork_pending(), request_id, ": FinishChoice before the fork");
  EndSeq(*seq, reason);
  if (--req.unfinished == 0) requests_.erase(it);  // destroys its choices
  return true;
}

Sequence* Scheduler::ChoiceOf(const Request& req, int index) {
  if (index == 0) return req.first.get();
  if (index < 1 || index > static_cast<int>(req.forks.size())) return nullptr;
  return req.forks[index - 1].get();
}

std::vector<SeqOutput> Scheduler::TakeAbortedOutputs() {
  std::vector<SeqOutput> out;
  out.swap(aborted_outputs_);
  return out;
}

const Sequence* Scheduler::Find(absl::string_view request_id) const {
  const auto it = requests_.find(request_id);
  return it == requests_.end() ? nullptr : it->second.first.get();
}

const Sequence* Scheduler::FindChoice(absl::string_view request_id, int index) const {
  const auto it = requests_.find(request_id);
  if (it == requests_.end()) return nullptr;
  return ChoiceOf(it->second, index);
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
  size_t unfinished = 0;
  int reserved = 0;
  for (const auto& [id, req] : requests_) {
    int live = 0;
    for (int c = 0; c <= static_cast<int>(req.forks.size()); ++c) {
      const Sequence* seq = c == 0 ? req.first.get() : req.forks[c - 1].get();
      if (seq->choice_index() != c)
        return fail(id, ": choice ", c, " says it is ", seq->choice_index());
      if (seq->is_finished()) {
        if (!seq->block_table().empty()) return fail(id, ": finished choice ", c, " holds blocks");
        continue;
      }
      ++live;
      if (seq->fork_pending() && seq->status() == SequenceStatus::kRunning) {
        reserved += seq->params().n - 1;
      }
    }
    if (!req.forks.empty() && static_cast<int>(req.forks.size()) != req.first->params().n - 1) {
      return fail(id, ": ", req.forks.size(), " forks for n = ", req.first->params().n);
    }
    if (live != req.unfinished || live == 0) {
      return fail(id, ": ", live, " unfinished choices, counted ", req.unfinished);
    }
    unfinished += live;
  }
  if (unfinished != running_.size() + waiting_.size()) {
    return fail(unfinished, " unfinished sequences but ", running_.size(), " running + ",
                waiting_.size(), " waiting");
  }
  if (reserved != reserved_slots_) {
    return fail(reserved_slots_, " reserved slots, running unforked requests need ", reserved);
  }
  if (static_cast<int>(running_.size()) + reserved_slots_ > config_.max_num_seqs) {
    return fail(running_.size(), " running + ", reserved_slots_,
                " reserved slots exceed max_num_seqs ", config_.max_num_seqs);
  }
  for (size_t i = 0; i < running_.size(); ++i) {
    const Sequence* seq = running_[i];
    if (seq->status() != SequenceStatus::kRunning) {
      return fail(seq->request_id(), " is ", SequenceStatusName(seq->status()),
                  " in the running set");
    }
    if (i > 0 && Before(seq, running_[i - 1])) return fail("running set out of order at ", i);
    if (FindChoice(seq->request_id(), seq->choice_index()) != seq) {
      return fail(seq->request_id(), " running but unknown");
    }
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
    if (FindChoice(seq->request_id(), seq->choice_index()) != seq) {
      return fail(seq->request_id(), " waiting but unknown");
    }
  }
  const std::vector<const Sequence*> holders(running_.begin(), running_.end());
  return block_manager_.CheckInvariants(holders);
}
}  // namespace tessera
