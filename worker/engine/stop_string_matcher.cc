#include "worker/engine/stop_string_matcher.h"

#include <algorithm>
#include <utility>

namespace tessera {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const std::string& s : stops_) {
    if (!s.empty()) holdback_ = std::max(holdback_, s.size() - 1);
  }
}

std::string StopStringMatcher::Append(absl::string_view text) {
  if (stopped_) return "";
  buffer_.append(text.data(), text.size());
  // Any stop string ending in the new text starts within the last holdback_
  // bytes kept from before, so searching the buffer finds it.
  size_t best = std::string::npos;
  for (const std::string& s : stops_) {
    if (s.empty()) continue;
    const size_t pos = buffer_.find(s);
    if (pos < best) {
      best = pos;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    std::string out = buffer_.substr(0, best);
    buffer_.clear();
    return out;
  }
  size_t release = buffer_.size() > holdback_ ? buffer_.size() - holdback_ : 0;
  // Never split a UTF-8 character: back up over continuation bytes.
  while (release > 0 && release < buffer_.size() &&
         (static_cast<unsigned char>(buffer_[release]) & 0xC0) == 0x80) {
    --release;
  }
  std::string out = buffer_.substr(0, release);
  buffer_.erase(0, release);
  return out;
}

std::string StopStringMatcher::Flush() {
  std::string out;
  out.swap(buffer_);
  return out;
}

}  // namespace tessera
