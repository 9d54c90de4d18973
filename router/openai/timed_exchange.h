// An http::Exchange that times its response for the router's metrics
// (tessera_router_http_request_duration_seconds{route,code}): it forwards
// every call to the exchange it wraps and records, once, the time from its
// creation to the end of the response (Respond, or a stream's End) with the
// response's status. An exchange dropped unanswered counts as 500 (what the
// server answers then). Thread-safe, as the exchange it wraps.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "common/http/http_server.h"
#include "router/router_metrics.h"

namespace tessera::router::openai {

class TimedExchange final : public http::Exchange {
 public:
  TimedExchange(std::shared_ptr<http::Exchange> inner, std::string route, RouterMetrics* metrics)
      : inner_(std::move(inner)),
        route_(std::move(route)),
        metrics_(metrics),
        start_(absl::Now()) {}
  ~TimedExchange() override { Record(500); }

  void Respond(http::Response response) override {
    const int status = response.status;
    inner_->Respond(std::move(response));
    Record(status);
  }
  void StartStream(int status, std::vector<http::Header> headers) override {
    stream_status_.store(status, std::memory_order_relaxed);
    inner_->StartStream(status, std::move(headers));
  }
  void Write(std::string data, std::function<void(bool ok)> done) override {
    inner_->Write(std::move(data), std::move(done));
  }
  void End() override {
    inner_->End();
    Record(stream_status_.load(std::memory_order_relaxed));
  }
  void OnClientClose(std::function<void()> on_close) override {
    inner_->OnClientClose(std::move(on_close));
  }
  bool closed() const override { return inner_->closed(); }

 private:
  void Record(int status) {
    if (recorded_.exchange(true)) return;
    metrics_->ObserveHttp(route_, status, absl::Now() - start_);
  }

  const std::shared_ptr<http::Exchange> inner_;
  const std::string route_;
  RouterMetrics* const metrics_;
  const absl::Time start_;
  std::atomic<int> stream_status_{500};
  std::atomic<bool> recorded_{false};
};

}  // namespace tessera::router::openai
