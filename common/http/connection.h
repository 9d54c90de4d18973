// One accepted TCP connection: reads and parses requests with Beast's parser, hands each to the
// handler with an Exchange, writes the answers in order, and enforces the limits and timeouts.
//
// Every member function named Do* or On* runs on the connection's strand (its socket's
// executor); the public entry points below post to it, so a Connection is thread-safe to use
// through them. User callbacks (done, on_close) run on the strand with no lock held; they can
// only re-enter through the posting entry points, never inline.
//
// Life of a connection (State):
//   kReading -> kHandling (request parsed, handler called) -> kStreaming (StartStream)
//            -> kFlushing (Respond/End queued) -> kReading (keep-alive, next request)
//                                              -> kLingering (closing: send shut, input drained)
//   any -> kClosed (client gone, error, timeout, shutdown); kClosed is final and after it only
//   `req_id_`, `state_` and the atomics are read (by exchanges, possibly off the strand once
//   the server threads are gone).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/string_body.hpp"
#include "common/http/http_server.h"
#include "common/http/server_core.h"

namespace tessera::http {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `socket` must have its own strand as executor.
  Connection(std::shared_ptr<ServerCore> core, boost::asio::ip::tcp::socket socket, uint64_t id);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Posting entry points (any thread).
  void Start();
  void Drain();       // shutdown began: close if idle, close after the response in progress
  void ForceClose();  // shutdown grace is over
  void Respond(uint64_t req, Response response);
  void StartStream(uint64_t req, int status, std::vector<Header> headers);
  void Write(uint64_t req, std::string data, std::function<void(bool)> done);
  void End(uint64_t req);
  void OnClientClose(uint64_t req, std::function<void()> on_close);
  bool closed() const { return closed_.load(std::memory_order_acquire); }

 private:
  enum class State { kReading, kHandling, kStreaming, kFlushing, kLingering, kClosed };
  enum class Deadline { kNone, kIdle, kHeader, kBody, kLinger };
  // One piece of output: `head`, `data` and `tail` are written back to back; `done` runs once
  // they were handed to the socket (or failed).
  struct Out {
    std::string head;
    std::string data;
    std::string_view tail;  // a static string
    std::function<void(bool)> done;
  };
  struct Batch;  // the outs of one async_write

  template <class F>
  void Post(F&& op);

  // Reading (connection_read.cc).
  void DoStart();
  void BeginRequest(bool first);
  void MaybeRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  void Parse();
  void OnHeaderDone();
  void Dispatch();
  void Arm(Deadline kind, absl::Duration after);
  void Disarm();
  void OnDeadline(uint64_t generation);
  size_t ReadCap() const;

  // Writing (connection_write.cc).
  void DoRespond(uint64_t req, Response response);
  void DoStartStream(uint64_t req, int status, std::vector<Header> headers);
  void DoWrite(uint64_t req, std::string data, std::function<void(bool)> done);
  void DoEnd(uint64_t req);
  void DoOnClientClose(uint64_t req, std::function<void()> on_close);
  void DoDrain();
  void SendError(int status, std::string_view message);  // then close
  void QueueResponse(Response response);
  void Enqueue(Out out);
  void Flush();
  void OnWritten(const std::shared_ptr<Batch>& batch, const boost::system::error_code& ec);
  void FinishResponse();
  void StartLinger();
  void Close();

  const std::shared_ptr<ServerCore> core_;
  const ServerOptions& options_;  // core_'s
  const uint64_t id_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  std::atomic<bool> closed_{false};
  // The request whose response the close cut short (0: none); OnClientClose for it runs.
  std::atomic<uint64_t> abandoned_req_{0};

  State state_ = State::kReading;
  bool registered_ = false;
  std::string remote_;

  // Input.
  boost::beast::flat_buffer buffer_;  // received, not yet parsed
  std::unique_ptr<char[]> scratch_;   // what the pending read fills
  bool reading_ = false;              // an async_read_some into scratch_ is in flight
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  bool request_started_ = false;  // bytes of the next request have arrived
  bool header_done_ = false;
  Deadline deadline_ = Deadline::kNone;
  uint64_t timer_generation_ = 0;

  // The current request and its response.
  uint64_t req_id_ = 0;
  int version_ = 11;
  bool keep_alive_ = true;
  bool head_request_ = false;
  bool close_after_ = false;      // close once the response is written
  bool chunked_ = false;          // the stream frames its writes as chunks
  bool body_suppressed_ = false;  // HEAD, 204, 304: writes send nothing
  std::function<void()> on_close_;

  // Output.
  std::deque<Out> queue_;
  bool writing_ = false;
};

// Runs a user callback; an exception from it is logged, never propagated into the server.
void SafeCall(const std::function<void()>& fn);
void SafeCall(const std::function<void(bool)>& fn, bool ok);

// The Exchange handed to the handler for request `req` of `connection` (exchange.cc).
std::shared_ptr<Exchange> MakeExchange(std::shared_ptr<Connection> connection, uint64_t req);

}  // namespace tessera::http
