#include "worker/engine/output_processor.h"

#include <utility>

namespace tessera {

void OutputProcessor::Add(const std::string& request_id, std::span<const int32_t> prompt_tail,
                          std::vector<std::string> stop, bool return_text) {
  std::unique_ptr<Text> text;
  if (tokenizer_ != nullptr && (return_text || !stop.empty())) {
    text = std::make_unique<Text>(tokenizer_, std::move(stop), return_text);
    // The prompt's own text is not output: only the context it gives.
    if (!text->decoder.Append(prompt_tail).ok()) {
      text->decoder = IncrementalDecoder(tokenizer_, /*skip_special=*/true);
    }
  }
  stopped_.erase(request_id);
  requests_.insert_or_assign(request_id, std::move(text));
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

std::vector<std::string> OutputProcessor::Process(std::vector<RequestOutput>& outputs) {
  std::vector<std::string> ended;
  size_t kept = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    RequestOutput& o = outputs[i];
    if (auto s = stopped_.find(o.request_id); s != stopped_.end()) {
      if (o.finished()) stopped_.erase(s);  // the scheduler's abort: the request is gone
      continue;                             // already ended for the client
    }
    auto it = requests_.find(o.request_id);
    if (it != requests_.end()) {
      if (it->second != nullptr && ProcessText(*it->second, o)) {
        if (!o.finished()) {
          // Ends here for the client; the scheduler still runs it until the
          // caller's abort, whose output is dropped above.
          stopped_.insert(o.request_id);
          ended.push_back(o.request_id);
        }
        o.finish_reason = FinishReason::kStop;
      }
      if (o.finished()) requests_.erase(it);  // a stopped output is finished now
    }
    if (kept != i) outputs[kept] = std::move(o);
    ++kept;
  }
  outputs.resize(kept);
  return ended;
}

}  // namespace tessera
