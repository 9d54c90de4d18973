// The OpenAI-compatible HTTP API on the router (--http-port): the routes, the
// API key, and each generation request turned into the same internal request
// the gRPC Llm.Generate path makes (router/request_intake.h: model, limits,
// tokenization, request id, block hashes) and relayed by the same relay
// (router/generate_relay.h: admission, placement, failover). The JSON shapes
// live in router/openai/protocol.h; the HTTP server is common/http.
//
//   POST /v1/chat/completions, POST /v1/completions   (SSE when "stream")
//   GET  /v1/models, GET /health, GET /version
//   POST /tokenize, POST /detokenize                  (vLLM's)
//   GET  /metrics                                     (Prometheus text format; open, like
//                                                      /health: no API key)
//
// A completions request with several prompts runs one relay per prompt; its
// choices are numbered prompt * n + j. Nothing is sent before the first
// token (or the end), so a request refused before it ran gets a plain HTTP
// error: 400 bad input, 401 key, 404 model or route, 429 + Retry-After when
// the admission queue is full, 503 + Retry-After when no worker serves. A
// failure after the first streamed token is an SSE error event, then the
// stream ends. A client that disconnects cancels its relays (and so its
// sequences on the worker).
//
// Thread-safe: handlers run on the HTTP server's threads, relay callbacks on
// gRPC threads.
#pragma once

#include <memory>
#include <string>

#include "common/http/http_server.h"
#include "router/auth.h"
#include "router/generate_relay.h"
#include "router/request_intake.h"
#include "router/router_metrics.h"
#include "router/tenants.h"

namespace tessera::router::openai {

struct HttpApiOptions {
  RelayEnvironment relay;            // pool, admission, counters, tracker, retries
  RequestIntake* intake = nullptr;   // required
  const BearerAuth* auth = nullptr;  // --api-key (may be disabled); required
  // Tenants (keys, `user`, limits: router/tenants.h); null: one default
  // tenant, `auth` checks the key. A request refused by its tenant's limits
  // gets 429 with Retry-After (seconds until it would pass).
  Tenants* tenants = nullptr;
  // GET /metrics, and every exchange timed; null: no /metrics route.
  RouterMetrics* metrics = nullptr;
};

// The body of the responses the HTTP server makes itself (malformed request,
// 408, 413, 431, shutting down), as an OpenAI error.
http::Response ServerErrorResponse(int status, std::string_view message);

class HttpApi {
 public:
  explicit HttpApi(HttpApiOptions options);

  // The http::Handler of the router's HTTP server.
  void Handle(http::Request request, std::shared_ptr<http::Exchange> exchange);

 private:
  void Generate(bool chat, const http::Request& request, std::shared_ptr<http::Exchange> exchange);
  void Models(std::shared_ptr<http::Exchange> exchange);
  void Health(std::shared_ptr<http::Exchange> exchange);
  void Metrics(std::shared_ptr<http::Exchange> exchange);
  void Refused(const absl::Status& status);
  void Tokenize(bool detokenize, const http::Request& request,
                std::shared_ptr<http::Exchange> exchange);

  const HttpApiOptions options_;
};

}  // namespace tessera::router::openai
