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

#include "absl/status/statusor.h"
#include "bench/bench_load.h"
#include "bench/bench_options.h"
#include "bench/sse_parser.h"

namespace tessera::bench {

// Resolves --target (HOST:PORT, an http:// prefix allowed) and starts the
// client's threads; fails when the address does not resolve. The transport's
// destructor stops the threads: destroy it only after every call reported.
absl::StatusOr<std::unique_ptr<Transport>> MakeOpenAiTransport(const Options& o);

}  // namespace tessera::bench
