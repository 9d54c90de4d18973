// Connection, input side: the read loop, request parsing with Beast's parser, the header,
// body and idle deadlines, and handing a parsed request to the handler.
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "boost/asio/buffer.hpp"
#include "boost/beast/core/string.hpp"
#include "boost/beast/http/error.hpp"
#include "common/http/connection.h"
#include "common/http/wire.h"
#include "common/logging.h"

namespace tessera::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

constexpr size_t kReadChunk = 8 * 1024;

}  // namespace

void Connection::DoStart() {
  if (!core_->Register(id_, weak_from_this())) {  // shutdown began
    Close();
    return;
  }
  registered_ = true;
  boost::system::error_code ec;
  socket_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
  const auto endpoint = socket_.remote_endpoint(ec);
  remote_ = ec ? "unknown" : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  BeginRequest(/*first=*/true);
}

// -> kReading. Parses what is already buffered (pipelined requests) before reading more.
void Connection::BeginRequest(bool first) {
  state_ = State::kReading;
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(
      std::min<size_t>(options_.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  parser_->body_limit(options_.max_body_bytes);
  request_started_ = false;
  header_done_ = false;
  on_close_ = nullptr;
  Arm(Deadline::kIdle, first ? options_.header_timeout : options_.idle_timeout);
  Parse();
  MaybeRead();
}

// While a response is pending the input is only buffered, up to max_header_bytes; past that
// reading pauses until the next request is parsed (a write error still reveals a dead peer).
size_t Connection::ReadCap() const {
  switch (state_) {
    case State::kReading:
      return options_.max_header_bytes + kReadChunk;
    case State::kHandling:
    case State::kStreaming:
    case State::kFlushing:
      return options_.max_header_bytes;
    case State::kLingering:
      return kReadChunk;  // drained as it comes
    case State::kClosed:
      return 0;
  }
  return 0;
}

void Connection::MaybeRead() {
  if (reading_ || state_ == State::kClosed || buffer_.size() >= ReadCap()) return;
  reading_ = true;
  // Into a buffer of its own: Parse may consume (and so move) buffer_ while a read is pending.
  if (!scratch_) scratch_ = std::make_unique<char[]>(kReadChunk);
  socket_.async_read_some(boost::asio::buffer(scratch_.get(), kReadChunk),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      size_t n) { self->OnRead(ec, n); });
}

void Connection::OnRead(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (state_ == State::kClosed) return;
  if (ec) {  // EOF, reset, or our own close: the client is gone
    Close();
    return;
  }
  if (state_ == State::kLingering) return MaybeRead();  // dropped
  boost::asio::buffer_copy(buffer_.prepare(n), boost::asio::buffer(scratch_.get(), n));
  buffer_.commit(n);
  switch (state_) {
    case State::kReading:
      Parse();
      break;
    case State::kHandling:
    case State::kStreaming:
    case State::kFlushing:
    case State::kLingering:
    case State::kClosed:
      break;
  }
  MaybeRead();
}

void Connection::Parse() {
  while (state_ == State::kReading && buffer_.size() > 0) {
    if (!request_started_) {
      request_started_ = true;
      Arm(Deadline::kHeader, options_.header_timeout);
    }
    beast::error_code ec;
    const size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == bhttp::error::need_more) break;
    if (ec == bhttp::error::header_limit) return SendError(431, "request header fields too large");
    if (ec == bhttp::error::body_limit) return SendError(413, "request body too large");
    if (ec) return SendError(400, "malformed request: " + ec.message());
    if (!header_done_ && parser_->is_header_done()) {
      header_done_ = true;
      OnHeaderDone();
    }
    if (parser_->is_done()) return Dispatch();
    if (used == 0) break;
  }
  // Unconsumed bytes only pile up when a line does not end (a header or a chunk size line).
  if (state_ == State::kReading && buffer_.size() >= ReadCap()) {
    SendError(431, "request header fields too large");
  }
}

void Connection::OnHeaderDone() {
  if (parser_->is_done()) return;
  Arm(Deadline::kBody, options_.body_timeout);
  const auto expect = parser_->get()[bhttp::field::expect];
  if (beast::iequals(expect, "100-continue")) {
    Enqueue(Out{std::string(wire::kContinue), {}, {}, nullptr});
    Flush();
  }
}

// kReading -> kHandling: the handler gets the request.
void Connection::Dispatch() {
  Disarm();
  auto& message = parser_->get();
  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.path = request.target.substr(0, request.target.find('?'));
  request.headers.reserve(std::distance(message.begin(), message.end()));
  for (const auto& field : message) {
    request.headers.push_back({std::string(field.name_string()), std::string(field.value())});
  }
  request.body = std::move(message.body());
  request.remote = remote_;
  request.version = message.version() == 10 ? 10 : 11;
  version_ = request.version;
  keep_alive_ = message.keep_alive();
  head_request_ = message.method() == bhttp::verb::head;
  parser_.reset();
  ++req_id_;
  if (core_->draining()) return SendError(503, "server is shutting down");

  state_ = State::kHandling;
  close_after_ = false;
  chunked_ = false;
  body_suppressed_ = false;
  try {
    core_->handler()(std::move(request), MakeExchange(shared_from_this(), req_id_));
  } catch (const std::exception& e) {
    spdlog::error("http: handler threw on {}: {}", remote_, e.what());
    DoRespond(req_id_, core_->ErrorResponse(500, "internal server error"));
  } catch (...) {
    spdlog::error("http: handler threw on {}", remote_);
    DoRespond(req_id_, core_->ErrorResponse(500, "internal server error"));
  }
}

void Connection::Arm(Deadline kind, absl::Duration after) {
  deadline_ = kind;
  const uint64_t generation = ++timer_generation_;
  timer_.expires_after(absl::ToChronoNanoseconds(after));
  timer_.async_wait([self = shared_from_this(), generation](const boost::system::error_code& ec) {
    if (!ec) self->OnDeadline(generation);
  });
}

void Connection::Disarm() {
  deadline_ = Deadline::kNone;
  ++timer_generation_;
  timer_.cancel();
}

void Connection::OnDeadline(uint64_t generation) {
  if (generation != timer_generation_ || state_ == State::kClosed) return;
  switch (deadline_) {
    case Deadline::kNone:
      return;
    case Deadline::kIdle:
    case Deadline::kLinger:
      return Close();
    case Deadline::kHeader:
      if (state_ == State::kReading) SendError(408, "request header timeout");
      return;
    case Deadline::kBody:
      if (state_ == State::kReading) SendError(408, "request body timeout");
      return;
  }
}

}  // namespace tessera::http
