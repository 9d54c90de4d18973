// The state a Server shares with its connections: options, handler, the io_context and its
// threads, the acceptor, and the registry of open connections that Shutdown walks. Connections
// and the exchanges that point at them hold it by shared_ptr, so the io_context outlives every
// socket even when a handler keeps an Exchange after the Server is gone.
//
// Thread-safe. Internal to common/http.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "common/http/http_server.h"

namespace tessera::http {

class Connection;

class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(ServerOptions options, Handler handler);
  ~ServerCore();
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;

  // Resolves, binds and listens, then starts the threads and the accept loop.
  absl::Status Start();
  void Shutdown(absl::Duration grace);

  const ServerOptions& options() const { return options_; }
  const Handler& handler() const { return handler_; }
  int port() const { return port_; }
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  Response ErrorResponse(int status, std::string_view message) const;

  // Queues `fn` on `executor` while the server threads run; once they have stopped (after
  // Shutdown closed every connection) runs it on a detached thread instead, so a callback it
  // makes never runs under the caller's locks.
  template <class Executor, class F>
  void PostOrDetach(const Executor& executor, F&& fn) {
    {
      absl::ReaderMutexLock lock(&mu_);
      if (!stopped_) {
        boost::asio::post(executor, std::forward<F>(fn));
        return;
      }
    }
    std::thread(std::forward<F>(fn)).detach();
  }

  // A connection announces itself when it starts and leaves when it closes. Register says
  // false once shutdown began (the connection then closes at once).
  bool Register(uint64_t id, std::weak_ptr<Connection> connection);
  void Unregister(uint64_t id);
  size_t open_connections() const;

 private:
  void Accept();
  void OnAccept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);
  void RunThread();
  std::vector<std::shared_ptr<Connection>> Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);

  const ServerOptions options_;
  const Handler handler_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::strand<boost::asio::io_context::executor_type> accept_strand_;
  boost::asio::ip::tcp::acceptor acceptor_;  // on accept_strand_
  boost::asio::steady_timer accept_retry_;   // after EMFILE and the like
  int port_ = 0;
  std::atomic<uint64_t> next_connection_id_{1};
  std::atomic<bool> draining_{false};
  std::vector<std::thread> threads_;

  absl::Mutex shutdown_mu_;  // serialises Shutdown calls
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // the threads have been told to finish
  absl::flat_hash_map<uint64_t, std::weak_ptr<Connection>> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::http
