// Finds stop strings in a stream of detokenized text. Text is released only
// once it can no longer be the start of a stop string, so nothing past a stop
// string is ever returned; releases end on UTF-8 character boundaries.
// Per-request state; not thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tessera {

class StopStringMatcher {
 public:
  // `stops`: the request's stop strings (non-empty strings; may be none).
  explicit StopStringMatcher(std::vector<std::string> stops);

  // Appends `text` (valid UTF-8) and returns the text now safe to emit. Once
  // a stop string appears, returns the text before it, stopped() turns true
  // and later calls return "".
  std::string Append(absl::string_view text);
  // The held-back tail, at the end of the request (empty once stopped).
  std::string Flush();

  bool stopped() const { return stopped_; }
  // The stop string that matched ("" until stopped()).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  size_t holdback_ = 0;  // longest stop string - 1
  std::string buffer_;   // text not yet released
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace tessera
