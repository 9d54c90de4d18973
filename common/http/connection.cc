// Connection: construction, the posting entry points, shutdown hooks and the final close.
// Reading is in connection_read.cc, writing in connection_write.cc.
#include "common/http/connection.h"

#include <utility>

namespace tessera::http {
Connection::Connection(std::shared_ptr<ServerCore> core, boost::asio::ip::tcp::socket socket,
                       uint64_t id)
    : core_(std::move(core)),
      options_(core_->options()),
      id_(id),
      socket_(std::move(socket)),
      timer_(socket_.get_executor()) {}

template <class F>
void Connection::Post(F&& op) {
  core_->PostOrDetach(socket_.get_executor(), [self = shared_from_this(),
                                               op = std::forward<F>(op)]() mutable { op(*self); });
}

void Connection::Start() {
  Post([](Connection& c) { c.DoStart(); });
}

void Connection::Drain() {
  Post([](Connection& c) { c.DoDrain(); });
}

void Connection::ForceClose() {
  Post([](Connection& c) { c.Close(); });
}

void Connection::Respond(uint64_t req, Response response) {
  Post([req, response = std::move(response)](Connection& c) mutable {
    c.DoRespond(req, std::move(response));
  });
}

void Connection::StartStream(uint64_t req, int status, std::vector<Header> headers) {
  Post([req, status, headers = std::move(headers)](Connection& c) mutable {
    c.DoStartStream(req, status, std::move(headers));
  });
}

void Connection::Write(uint64_t req, std::string data, std::function<void(bool)> done) {
  Post([req, data = std::move(data), done = std::move(done)](Connection& c) mutable {
    c.DoWrite(req, std::move(data), std::move(done));
  });
}

void Connection::End(uint64_t req) {
  Post([req](Connection& c) { c.DoEnd(req); });
}

void Connection::OnClientClose(uint64_t req, std::function<void()> on_close) {
  Post([req, on_close = std::move(on_close)](Connection& c) mutable {
    c.DoOnClientClose(req, std::move(on_close));
  });
}

void Connection::DoOnClientClose(uint64_t req, std::function<void()> on_close) {
  if (state_ == State::kClosed) {
    // Read-only here: this may run off the strand once the server threads are gone.
    if (req == abandoned_req_.load(std::memory_order_acquire)) SafeCall(on_close);
    return;
  }
  if (req != req_id_) return;  // that response ended; a later request is on the connection
  switch (state_) {
    case State::kHandling:
    case State::kStreaming:
      on_close_ = std::move(on_close);
      return;
    case State::kReading:
    case State::kFlushing:
    case State::kLingering:
    case State::kClosed:
      return;  // the response has ended
  }
}

void Connection::DoDrain() {
  switch (state_) {
    case State::kReading:
      if (!request_started_) Close();  // idle keep-alive connection
      return;                          // a request on its way gets 503 once parsed
    case State::kLingering:
      Close();  // its response is complete
      return;
    case State::kHandling:
    case State::kStreaming:
    case State::kFlushing:
    case State::kClosed:
      return;  // FinishResponse closes instead of reading the next request
  }
}

// any -> kClosed. Runs on_close when a response was cut short, and fails queued writes.
void Connection::Close() {
  if (state_ == State::kClosed) return;
  const bool abandoned = state_ == State::kHandling || state_ == State::kStreaming;
  if (abandoned) abandoned_req_.store(req_id_, std::memory_order_release);
  state_ = State::kClosed;
  closed_.store(true, std::memory_order_release);
  Disarm();
  boost::system::error_code ignored;
  socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  std::function<void()> on_close = std::move(on_close_);
  on_close_ = nullptr;
  std::deque<Out> unsent = std::move(queue_);
  queue_.clear();
  parser_.reset();
  buffer_ = boost::beast::flat_buffer();
  if (registered_) core_->Unregister(id_);
  registered_ = false;
  if (abandoned) SafeCall(on_close);
  for (Out& out : unsent) SafeCall(out.done, false);
}

}  // namespace tessera::http
