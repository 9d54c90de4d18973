#include "worker/engine/sequence.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

namespace tessera {

absl::string_view SequenceStatusName(SequenceStatus status) {
  switch (status) {
    case SequenceStatus::kWaiting:
      return "waiting";
    case SequenceStatus::kRunning:
      return "running";
    case SequenceStatus::kPreempted:
      return "preempted";
    case SequenceStatus::kFinished:
      return "finished";
  }
  return "unknown";
}

absl::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kError:
      return "error";
  }
  return "unknown";
}

Sequence::Sequence(std::string request_id, SeqId id, std::vector<int32_t> prompt,
                   SamplingParams params, int priority, int64_t arrival_time_ns)
    : tokens_(std::move(prompt)),
      max_total_tokens_(static_cast<int>(
          std::min<int64_t>(int64_t{static_cast<int>(tokens_.size())} + params.max_tokens,
                            std::numeric_limits<int>::max()))),
      num_prompt_tokens_(static_cast<int>(tokens_.size())),
      params_(std::move(params)),
      request_id_(std::move(request_id)),
      id_(id),
      priority_(priority),
      arrival_time_ns_(arrival_time_ns) {
  if (params_.n > 1) fork_flags_ = kForkPending;
}

std::unique_ptr<Sequence> Sequence::ForkOf(const Sequence& parent, int index) {
  TESSERA_CHECK(index >= 1 && index < parent.params_.n, parent.request_id_, ": fork of choice ",
                index, " with n = ", parent.params_.n);
  const std::span<const int32_t> prompt = parent.prompt_tokens();
  auto child = std::make_unique<Sequence>(
      parent.request_id_, parent.id_, std::vector<int32_t>(prompt.begin(), prompt.end()),
      parent.params_, parent.priority_, parent.arrival_time_ns_);
  child->fork_flags_ = 0;
  child->choice_index_ = index;
  child->output_slot_ = parent.output_slot_;
  child->arrival_order_ = parent.arrival_order_;
  child->rng_seed_ = parent.choice_seed(index);
  child->ReserveOutput();
  return child;
}

void Sequence::PrimeOutput(std::span<const int32_t> output) {
  TESSERA_CHECK(status_ == SequenceStatus::kWaiting && num_output_tokens() == 0 &&
                    num_computed_tokens_ == 0 && block_table_.empty(),
                request_id_, ": output primed on a sequence that is not new");
  TESSERA_CHECK(params_.n == 1 && static_cast<int64_t>(output.size()) < params_.max_tokens,
                request_id_, ": ", output.size(), " primed output tokens with n = ", params_.n,
                " and max_tokens = ", params_.max_tokens);
  tokens_.insert(tokens_.end(), output.begin(), output.end());
}

void Sequence::ReserveOutput() {
  if (params_.max_tokens > 0) {
    tokens_.reserve(static_cast<size_t>(num_prompt_tokens_) + params_.max_tokens);
  }
}

void Sequence::SetRunning() {
  TESSERA_CHECK(status_ == SequenceStatus::kWaiting, request_id_, ": ", SequenceStatusName(status_),
                " -> running");
  status_ = SequenceStatus::kRunning;
}

void Sequence::SetPreempted() {
  TESSERA_CHECK(status_ == SequenceStatus::kRunning, request_id_, ": ", SequenceStatusName(status_),
                " -> preempted");
  TESSERA_CHECK(block_table_.empty() && num_computed_tokens_ == 0, request_id_,
                ": preempted while still holding ", block_table_.size(), " blocks");
  status_ = SequenceStatus::kPreempted;
  ++num_preemptions_;
}

void Sequence::SetWaiting() {
  TESSERA_CHECK(status_ == SequenceStatus::kPreempted, request_id_, ": ",
                SequenceStatusName(status_), " -> waiting");
  status_ = SequenceStatus::kWaiting;
}

void Sequence::SetFinished(FinishReason reason) {
  TESSERA_CHECK(reason != FinishReason::kNone, request_id_, ": finished without a reason");
  TESSERA_CHECK(status_ != SequenceStatus::kFinished, request_id_, ": finished twice (",
                FinishReasonName(finish_reason_), ", then ", FinishReasonName(reason), ")");
  status_ = SequenceStatus::kFinished;
  finish_reason_ = reason;
}

}  // namespace tessera
