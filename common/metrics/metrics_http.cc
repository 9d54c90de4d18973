#include "common/metrics/metrics_http.h"

#include <string>
#include <utility>

namespace tessera::metrics {

http::Response MetricsResponse(const Registry& registry, const http::Request& request) {
  http::Response response;
  if (request.method != "GET" && request.method != "HEAD") {
    response.status = 405;
    response.headers = {{"allow", "GET, HEAD"}, {"content-type", "text/plain"}};
    response.body = "method not allowed: /metrics answers GET and HEAD\n";
    return response;
  }
  response.headers = {{"content-type", std::string(Registry::kContentType)}};
  response.body = registry.Expose();
  return response;
}

absl::StatusOr<std::unique_ptr<http::Server>> StartMetricsServer(const std::string& host, int port,
                                                                 const Registry& registry) {
  http::ServerOptions options;
  options.host = host;
  options.port = port;
  options.threads = 1;
  return http::Server::Start(
      std::move(options),
      [&registry](http::Request request, std::shared_ptr<http::Exchange> exchange) {
        if (request.path == "/metrics") {
          exchange->Respond(MetricsResponse(registry, request));
          return;
        }
        exchange->Respond(
            http::Response{404, {{"content-type", "text/plain"}}, "not found: try /metrics\n"});
      });
}

}  // namespace tessera::metrics
