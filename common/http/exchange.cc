// Exchange: a request's handle on its connection. Every method posts to the connection's
// strand (see Connection), tagged with the request it belongs to, so a stale exchange cannot
// touch a later request on the same keep-alive connection.
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "common/http/connection.h"
#include "common/http/http_server.h"
#include "common/logging.h"

namespace tessera::http {
namespace {

class ExchangeImpl final : public Exchange {
 public:
  ExchangeImpl(std::shared_ptr<Connection> connection, uint64_t req)
      : connection_(std::move(connection)), req_(req) {}

  void Respond(Response response) override { connection_->Respond(req_, std::move(response)); }
  void StartStream(int status, std::vector<Header> headers) override {
    connection_->StartStream(req_, status, std::move(headers));
  }
  void Write(std::string data, std::function<void(bool ok)> done) override {
    connection_->Write(req_, std::move(data), std::move(done));
  }
  void End() override { connection_->End(req_); }
  void OnClientClose(std::function<void()> on_close) override {
    connection_->OnClientClose(req_, std::move(on_close));
  }
  bool closed() const override { return connection_->closed(); }

 private:
  const std::shared_ptr<Connection> connection_;
  const uint64_t req_;
};

}  // namespace

std::shared_ptr<Exchange> MakeExchange(std::shared_ptr<Connection> connection, uint64_t req) {
  return std::make_shared<ExchangeImpl>(std::move(connection), req);
}

std::string_view Request::header(std::string_view name) const {
  const absl::string_view wanted(name.data(), name.size());
  for (const Header& h : headers) {
    if (absl::EqualsIgnoreCase(h.name, wanted)) return h.value;
  }
  return {};
}

std::string_view Request::query() const {
  const size_t q = target.find('?');
  if (q == std::string::npos) return {};
  return std::string_view(target).substr(q + 1);
}

}  // namespace tessera::http

namespace tessera::http {

void SafeCall(const std::function<void()>& fn) {
  if (!fn) return;
  try {
    fn();
  } catch (const std::exception& e) {
    spdlog::error("http: a callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("http: a callback threw");
  }
}

void SafeCall(const std::function<void(bool)>& fn, bool ok) {
  if (!fn) return;
  try {
    fn(ok);
  } catch (const std::exception& e) {
    spdlog::error("http: a callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("http: a callback threw");
  }
}

}  // namespace tessera::http
