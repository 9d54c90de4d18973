// Serving a metrics::Registry over HTTP with the project's HTTP server (common/http): the
// response for GET /metrics, and a small listener that serves only that (the workers'
// --metrics-port). The router serves /metrics on its own HTTP server with MetricsResponse.
//
// Thread-safe (the registry is).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/http/http_server.h"
#include "common/metrics/metrics.h"

namespace tessera::metrics {

// 200 with the exposition (Content-Type: Registry::kContentType) for GET and HEAD; 405 with an
// Allow header for other methods.
http::Response MetricsResponse(const Registry& registry, const http::Request& request);

// Listens on host:port (port 0: a free one, see Server::port()) and answers GET /metrics from
// `registry`, which must outlive the server; other paths get 404. UNAVAILABLE when it cannot
// bind.
absl::StatusOr<std::unique_ptr<http::Server>> StartMetricsServer(const std::string& host, int port,
                                                                 const Registry& registry);

}  // namespace tessera::metrics
