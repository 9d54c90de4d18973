// tessera-bench over the router's OpenAI-compatible HTTP API (--api openai):
// each call is a streaming POST /v1/completions with the token-id prompt,
// max_tokens, temperature 0, ignore_eos, stream and
// stream_options.include_usage, read as Server-Sent Events.
//
// Boost.Beast, asynchronous: one io_context run by --http-threads threads,
// one TCP connection per call in flight (opened for the call, closed after
// it; no keep-alive reuse), each call's handlers on its own strand, so one
// process holds thousands of concurrent streams (raise RLIMIT_NOFILE first).
//
// What a call measures: `sent` is when the connection is opened (so TTFT
// includes the TCP connect, as for any client without a connection pool);
// TTFT is the first chunk with non-empty text; output, prompt and cached
// tokens come from the final usage chunk (without one, output tokens = text
// chunks); inter-token latency is each gap between text chunks divided by the
// mean tokens per chunk (usage tokens / text chunks). A call succeeds when it
// got HTTP 200, a finish_reason and the closing "data: [DONE]". Failures:
// HTTP_<status> (before the stream; the error JSON's message is kept),
// SSE_ERROR (an error event in the stream), NO_FINISH (the stream ended
// without a finish_reason or [DONE]), BAD_RESPONSE (unparsable HTTP or event
// JSON), CONNECT_FAILED, TIMEOUT (--timeout for the whole call),
// CONNECTION_RESET, CONNECTION_CLOSED (the server closed mid-response),
// IO_ERROR (any other socket error).
//
// With --disconnect-after-tokens K the client closes the socket right after
// the K-th text chunk (unless that chunk finished the stream).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "bench/bench_load.h"
#include "bench/bench_options.h"

namespace tessera::bench {

// Resolves --target (HOST:PORT, an http:// prefix allowed) and starts the
// client's threads; fails when the address does not resolve. The transport's
// destructor stops the threads: destroy it only after every call reported.
absl::StatusOr<std::unique_ptr<Transport>> MakeOpenAiTransport(const Options& o);

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
