#include "worker/engine/output_processor.h"

#include <utility>

namespace tessera {

int32_t OutputProcessor::Add(const std::string& request_id, std::span<const int32_t> prompt_tail,
                             const SamplingParams& params, bool return_text) {
  Request req;
  req.id = request_id;
  req.live = true;
  req.stop = StopConditions::Of(params);
  req.unfinished = params.n;
  if (tokenizer_ != nullptr && (return_text || !params.stop.empty())) {
    req.choices.reserve(params.n);
    for (int c = 0; c < params.n; ++c) {
      auto text = std::make_unique<Text>(tokenizer_, params.stop, return_text);
      // The prompt's own text is not output: only the context it gives.
      if (!text->decoder.Append(prompt_tail).ok()) {
        text->decoder = IncrementalDecoder(tokenizer_, /*skip_special=*/true);
      }
      req.choices.push_back(std::move(text));
    }
  }
  int32_t slot;
  if (const auto it = by_id_.find(request_id); it != by_id_.end()) {
    slot = it->second;
  } else if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<int32_t>(slots_.size());
    slots_.emplace_back();
  }
  slots_[slot] = std::move(req);
  by_id_[request_id] = slot;
  return slot;
}

void OutputProcessor::Remove(const std::string& request_id) {
  if (const auto it = by_id_.find(request_id); it != by_id_.end()) Release(it->second);
}

void OutputProcessor::Release(int32_t slot) {
  by_id_.erase(slots_[slot].id);
  slots_[slot] = Request{};  // frees its text states
  free_slots_.push_back(slot);
}

OutputProcessor::Request* OutputProcessor::Find(const RequestOutput& output) {
  // The per-token path: the slot, checked against the id (a cheap compare).
  if (output.output_slot >= 0 && static_cast<size_t>(output.output_slot) < slots_.size()) {
    Request& r = slots_[output.output_slot];
    if (r.live && r.id == output.request_id) return &r;
  }
  const auto it = by_id_.find(output.request_id);
  return it == by_id_.end() ? nullptr : &slots_[it->second];
}

void OutputProcessor::PrimeContinuation(const std::string& request_id,
                                        std::span<const int32_t> delivered) {
  const auto it = by_id_.find(request_id);
  if (it == by_id_.end() || slots_[it->second].choices.empty()) return;
  Text& t = *slots_[it->second].choices[0];
  // The delivered tokens never reached a stop string (that token's output
  // would have been the last one), so the matcher only refills what it holds
  // back.
  for (const int32_t token : delivered) {
    if (absl::StatusOr<std::string> piece = t.decoder.Append(std::span<const int32_t>(&token, 1));
        piece.ok()) {
      t.matcher.Append(*piece);
    }
  }
}

bool OutputProcessor::ProcessText(Text& t, RequestOutput& output) {
  std::string text;
  if (absl::StatusOr<std::string> piece = t.decoder.Append(output.new_tokens); piece.ok()) {
    text = t.matcher.Append(*piece);
  }
  if (output.finished() && !t.matcher.stopped()) text += t.matcher.Append(t.decoder.Flush());
  if (output.finished() && !t.matcher.stopped()) text += t.matcher.Flush();
  if (t.return_text) output.text = std::move(text);
  return t.matcher.stopped();
}

std::vector<OutputProcessor::Finished> OutputProcessor::Process(std::span<RequestOutput> outputs) {
  std::vector<Finished> ended;
  for (RequestOutput& o : outputs) {
    Request* found = Find(o);
    if (found == nullptr) continue;
    Request& req = *found;
    // Finished on arrival: the scheduler ended it (abort, error).
    const bool running = !o.finished();
    if (running && !o.new_tokens.empty()) {
      o.finish_reason =
          stop_checker_.Check(req.stop, o.new_tokens.back(), o.prompt_tokens, o.completion_tokens);
    }
    // A stop string ends it too, also when its token did already.
    if (o.index >= 0 && o.index < static_cast<int>(req.choices.size()) &&
        ProcessText(*req.choices[o.index], o)) {
      o.finish_reason = FinishReason::kStop;
    }
    if (!o.finished()) continue;
    if (running) ended.push_back({o.request_id, o.index, o.finish_reason});
    // The request goes with its last choice.
    if (--req.unfinished == 0) Release(static_cast<int32_t>(&req - slots_.data()));
  }
  return ended;
}

}  // namespace tessera
