// A Server-Sent Events parser for the OpenAI streaming responses
// tessera-bench reads (bench/openai_calls.cc).
#pragma once

#include <string>
#include <string_view>

namespace tessera::bench {

// Splits a Server-Sent Events byte stream into events. Feed() takes bytes as
// they arrive and calls on_event(data) for each complete event (its "data:"
// lines joined by '\n'); comments and other fields are skipped; CRLF and LF
// line ends both work. Not thread-safe.
class SseParser {
 public:
  template <typename F>
  void Feed(std::string_view bytes, F&& on_event) {
    pending_.append(bytes);
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending_.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (has_data_) on_event(std::string_view(data_));
        data_.clear();
        has_data_ = false;
      } else if (line.starts_with("data:")) {
        line.remove_prefix(5);
        if (line.starts_with(' ')) line.remove_prefix(1);
        if (has_data_) data_.push_back('\n');
        data_.append(line);
        has_data_ = true;
      }
    }
    pending_.erase(0, start);
  }

 private:
  std::string pending_;  // an incomplete line
  std::string data_;     // the current event's data
  bool has_data_ = false;
};

}  // namespace tessera::bench
