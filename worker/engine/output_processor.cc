#include "worker/engine/output_processor.h"

#include <utility>

namespace tessera {

void OutputProcessor::Add(const std::string& request_id, std::span<const int32_t> prompt_tail,
                          std::vector<std::string> stop, bool return_text, int n) {
  Request req;
  req.unfinished = n;
  if (tokenizer_ != nullptr && (return_text || !stop.empty())) {
    req.choices.reserve(n);
    for (int c = 0; c < n; ++c) {
      auto text = std::make_unique<Text>(tokenizer_, stop, return_text);
      // The prompt's own text is not output: only the context it gives.
      if (!text->decoder.Append(prompt_tail).ok()) {
        text->decoder = IncrementalDecoder(tokenizer_, /*skip_special=*/true);
      }
      req.choices.push_back(std::move(text));
    }
  }
  for (int c = 0; c < n; ++c) stopped_.erase(std::make_pair(request_id, c));
  requests_.insert_or_assign(request_id, std::move(req));
}

void OutputProcessor::PrimeContinuation(const std::string& request_id,
                                        std::span<const int32_t> delivered) {
  auto it = requests_.find(request_id);
  if (it == requests_.end() || it->second.choices.empty()) return;
  Text& t = *it->second.choices[0];
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

std::vector<OutputProcessor::Stopped> OutputProcessor::Process(
    std::vector<RequestOutput>& outputs) {
  std::vector<Stopped> ended;
  size_t kept = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    RequestOutput& o = outputs[i];
    if (!stopped_.empty()) {
      if (auto s = stopped_.find(std::make_pair(o.request_id, o.index)); s != stopped_.end()) {
        if (o.finished()) stopped_.erase(s);  // the scheduler's abort: the choice is gone
        continue;                             // already ended for the client
      }
    }
    auto it = requests_.find(o.request_id);
    if (it != requests_.end()) {
      Request& req = it->second;
      if (o.index >= 0 && o.index < static_cast<int>(req.choices.size()) &&
          ProcessText(*req.choices[o.index], o)) {
        if (!o.finished()) {
          // Ends here for the client; the scheduler still runs it until the
          // caller's abort, whose output is dropped above.
          stopped_.emplace(o.request_id, o.index);
          ended.push_back({o.request_id, o.index});
        }
        o.finish_reason = FinishReason::kStop;
      }
      // A stopped output is finished now; the request goes with its last choice.
      if (o.finished() && --req.unfinished == 0) requests_.erase(it);
    }
    if (kept != i) outputs[kept] = std::move(o);
    ++kept;
  }
  outputs.resize(kept);
  return ended;
}

}  // namespace tessera
