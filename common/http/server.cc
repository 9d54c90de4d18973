// Server and ServerCore: binding, the accept loop, the threads, and shutdown.
#include <exception>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/ip/address.hpp"
#include "common/http/connection.h"
#include "common/http/http_server.h"
#include "common/http/server_core.h"
#include "common/http/wire.h"
#include "common/logging.h"

namespace tessera::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

ServerCore::ServerCore(ServerOptions options, Handler handler)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      work_(io_.get_executor()),
      accept_strand_(io_.get_executor()),
      acceptor_(accept_strand_),
      accept_retry_(accept_strand_) {}

ServerCore::~ServerCore() = default;

Response ServerCore::ErrorResponse(int status, std::string_view message) const {
  if (options_.error_response) {
    try {
      return options_.error_response(status, message);
    } catch (const std::exception& e) {
      spdlog::error("http: error_response threw: {}", e.what());
    } catch (...) {
      spdlog::error("http: error_response threw");
    }
  }
  return wire::DefaultErrorResponse(status, message);
}

absl::Status ServerCore::Start() {
  const std::string where = absl::StrCat(options_.host, ":", options_.port);
  boost::system::error_code ec;
  tcp::resolver resolver(io_);
  const auto endpoints =
      resolver.resolve(options_.host, std::to_string(options_.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return absl::UnavailableError(
        absl::StrCat("http: cannot resolve ", where, ": ", ec ? ec.message() : "no address"));
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("http: cannot listen on ", where, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint(ec).port();
  Accept();
  threads_.reserve(options_.threads);
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { RunThread(); });
  return absl::OkStatus();
}

void ServerCore::RunThread() {
  for (;;) {
    try {
      io_.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("http: server thread caught: {}", e.what());
    } catch (...) {
      spdlog::error("http: server thread caught an exception");
    }
  }
}

void ServerCore::Accept() {
  // Each connection gets its own strand: its handlers never run concurrently.
  acceptor_.async_accept(asio::make_strand(io_),
                         [this](const boost::system::error_code& ec, tcp::socket socket) {
                           OnAccept(ec, std::move(socket));
                         });
}

void ServerCore::OnAccept(const boost::system::error_code& ec, tcp::socket socket) {
  if (!acceptor_.is_open() || ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors and the like: back off instead of spinning.
    spdlog::warn("http: accept failed: {}", ec.message());
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([this](const boost::system::error_code& wait_ec) {
      if (!wait_ec && acceptor_.is_open()) Accept();
    });
    return;
  }
  const uint64_t id = next_connection_id_.fetch_add(1);
  std::make_shared<Connection>(shared_from_this(), std::move(socket), id)->Start();
  Accept();
}

bool ServerCore::Register(uint64_t id, std::weak_ptr<Connection> connection) {
  absl::MutexLock lock(&mu_);
  if (draining_.load(std::memory_order_acquire)) return false;
  open_.emplace(id, std::move(connection));
  return true;
}

void ServerCore::Unregister(uint64_t id) {
  absl::MutexLock lock(&mu_);
  open_.erase(id);
}

size_t ServerCore::open_connections() const {
  absl::MutexLock lock(&mu_);
  return open_.size();
}

std::vector<std::shared_ptr<Connection>> ServerCore::Snapshot() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Connection>> out;
  out.reserve(open_.size());
  for (const auto& [id, weak] : open_) {
    if (auto connection = weak.lock()) out.push_back(std::move(connection));
  }
  return out;
}

void ServerCore::Shutdown(absl::Duration grace) {
  absl::MutexLock serial(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  {
    // Under mu_ so that no connection registers after the snapshot below.
    absl::MutexLock lock(&mu_);
    draining_.store(true, std::memory_order_release);
  }
  asio::post(accept_strand_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  for (const auto& connection : Snapshot()) connection->Drain();
  auto all_closed = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return open_.empty(); };
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&all_closed), std::max(grace, absl::ZeroDuration()));
  }
  for (const auto& connection : Snapshot()) connection->ForceClose();
  {
    // A close runs on the connection's strand without blocking; this only waits for the
    // threads to get to it.
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&all_closed), absl::Seconds(30))) {
      spdlog::error("http: {} connections did not close; a server thread is blocked", open_.size());
    }
    stopped_ = true;
  }
  // With the acceptor and every socket closed, the threads run out of work and return.
  work_.reset();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

// ---- Server ------------------------------------------------------------------------------

Server::Server(std::shared_ptr<ServerCore> core) : core_(std::move(core)) {}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options, Handler handler) {
  if (!handler) return absl::InvalidArgumentError("http: a handler is required");
  if (options.threads < 1) return absl::InvalidArgumentError("http: threads must be >= 1");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("http: port out of range: ", options.port));
  }
  if (options.max_header_bytes < 64) {
    return absl::InvalidArgumentError("http: max_header_bytes must be >= 64");
  }
  auto core = std::make_shared<ServerCore>(std::move(options), std::move(handler));
  if (absl::Status status = core->Start(); !status.ok()) return status;
  return std::unique_ptr<Server>(new Server(std::move(core)));
}

int Server::port() const { return core_->port(); }

void Server::Shutdown(absl::Duration grace) { core_->Shutdown(grace); }

size_t Server::open_connections() const { return core_->open_connections(); }

}  // namespace tessera::http
