// Connection, output side: responses and streams from the Exchange, the server's own error
// responses, the ordered write queue, and what follows a response (next request or close).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "boost/asio/buffer.hpp"
#include "boost/asio/write.hpp"
#include "common/http/connection.h"
#include "common/http/wire.h"

namespace tessera::http {
namespace {

// At most this many outs (and about this many bytes) go into one gathered write.
constexpr size_t kMaxBatchOuts = 64;
constexpr size_t kMaxBatchBytes = 256 * 1024;

}  // namespace

struct Connection::Batch {
  std::vector<Out> outs;
  std::vector<boost::asio::const_buffer> buffers;
};

// kHandling -> kFlushing.
void Connection::DoRespond(uint64_t req, Response response) {
  if (req != req_id_ || state_ != State::kHandling) return;
  close_after_ = !keep_alive_ || core_->draining();
  QueueResponse(std::move(response));
}

void Connection::QueueResponse(Response response) {
  const int status = wire::SanitizeStatus(response.status);
  const bool no_body = wire::StatusHasNoBody(status);
  wire::HeadSpec head;
  head.status = status;
  head.headers = &response.headers;
  head.framing = no_body ? wire::Framing::kNoBody : wire::Framing::kLength;
  head.content_length = response.body.size();
  head.close = close_after_;
  head.http10_keep_alive = version_ == 10 && !close_after_;
  Out out{wire::ResponseHead(head), {}, {}, nullptr};
  if (!no_body && !head_request_) out.data = std::move(response.body);
  state_ = State::kFlushing;
  on_close_ = nullptr;  // the response has ended: OnClientClose no longer applies
  Enqueue(std::move(out));
  Flush();
}

// kHandling -> kStreaming.
void Connection::DoStartStream(uint64_t req, int status, std::vector<Header> headers) {
  if (req != req_id_ || state_ != State::kHandling) return;
  status = wire::SanitizeStatus(status);
  body_suppressed_ = head_request_ || wire::StatusHasNoBody(status);
  chunked_ = version_ >= 11 && !wire::StatusHasNoBody(status);
  // HTTP/1.0 has no chunks: the body runs until the connection closes.
  close_after_ = !keep_alive_ || core_->draining() || !chunked_;
  wire::HeadSpec head;
  head.status = status;
  head.headers = &headers;
  head.framing = wire::StatusHasNoBody(status) ? wire::Framing::kNoBody
                 : chunked_                    ? wire::Framing::kChunked
                                               : wire::Framing::kUntilClose;
  head.close = close_after_;
  state_ = State::kStreaming;
  Enqueue(Out{wire::ResponseHead(head), {}, {}, nullptr});
  Flush();
}

void Connection::DoWrite(uint64_t req, std::string data, std::function<void(bool)> done) {
  if (req != req_id_ || state_ != State::kStreaming) {
    // Also the path once closed, possibly off the strand: read-only.
    SafeCall(done, false);
    return;
  }
  Out out;
  out.done = std::move(done);
  if (!data.empty() && !body_suppressed_) {
    if (chunked_) {
      out.head = wire::ChunkPrefix(data.size());
      out.tail = wire::kChunkSuffix;
    }
    out.data = std::move(data);
  }
  Enqueue(std::move(out));  // an empty out still reports `done` in order
  Flush();
}

// kStreaming -> kFlushing.
void Connection::DoEnd(uint64_t req) {
  if (req != req_id_ || state_ != State::kStreaming) return;
  state_ = State::kFlushing;
  on_close_ = nullptr;
  Enqueue(Out{chunked_ && !body_suppressed_ ? std::string(wire::kLastChunk) : std::string(),
              {},
              {},
              nullptr});
  Flush();
}

// kReading -> kFlushing, closing after: the server's own answer to a request it refuses.
void Connection::SendError(int status, std::string_view message) {
  parser_.reset();
  state_ = State::kHandling;
  keep_alive_ = false;
  close_after_ = true;
  head_request_ = false;
  // A client that does not take its error response is closed after header_timeout.
  Arm(Deadline::kLinger, options_.header_timeout);
  QueueResponse(core_->ErrorResponse(status, message));
}

void Connection::Enqueue(Out out) { queue_.push_back(std::move(out)); }

void Connection::Flush() {
  if (writing_) return;
  if (queue_.empty()) {
    if (state_ == State::kFlushing) FinishResponse();
    return;
  }
  if (state_ == State::kClosed || state_ == State::kLingering) return;
  auto batch = std::make_shared<Batch>();
  size_t bytes = 0;
  while (!queue_.empty() && batch->outs.size() < kMaxBatchOuts && bytes < kMaxBatchBytes) {
    batch->outs.push_back(std::move(queue_.front()));
    queue_.pop_front();
    const Out& out = batch->outs.back();
    bytes += out.head.size() + out.data.size() + out.tail.size();
  }
  for (const Out& out : batch->outs) {
    for (std::string_view piece :
         {std::string_view(out.head), std::string_view(out.data), out.tail}) {
      if (!piece.empty()) batch->buffers.emplace_back(piece.data(), piece.size());
    }
  }
  writing_ = true;
  boost::asio::async_write(
      socket_, batch->buffers,
      [self = shared_from_this(), batch](const boost::system::error_code& ec, size_t) {
        self->OnWritten(batch, ec);
      });
}

void Connection::OnWritten(const std::shared_ptr<Batch>& batch,
                           const boost::system::error_code& ec) {
  writing_ = false;
  const bool ok = !ec;
  for (Out& out : batch->outs) SafeCall(out.done, ok);
  if (ok) {
    Flush();
  } else {
    Close();  // the client is gone: on_close runs, queued writes fail
  }
}

// kFlushing -> kReading (keep-alive), kLingering (close) or kClosed (shutdown), once the
// response is written.
void Connection::FinishResponse() {
  if (core_->draining()) {
    Close();  // shutdown does not wait for the client to close its end
  } else if (close_after_ || !keep_alive_) {
    StartLinger();
  } else {
    BeginRequest(/*first=*/false);
  }
}

// kFlushing -> kLingering: send side shut, input read and dropped until the client closes, so
// unread request bytes do not turn our close into a reset that loses the response.
void Connection::StartLinger() {
  state_ = State::kLingering;
  boost::system::error_code ignored;
  socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
  buffer_.consume(buffer_.size());
  Arm(Deadline::kLinger, std::min(options_.header_timeout, absl::Seconds(2)));
  MaybeRead();
}

}  // namespace tessera::http
