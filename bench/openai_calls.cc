#include "bench/openai_calls.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "nlohmann/json.hpp"

namespace tessera::bench {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// What every call shares: the resolved target and the request's fixed parts.
struct Target {
  std::string host;  // the Host header
  tcp::resolver::results_type endpoints;
};

// The failure category of a socket or HTTP error.
std::string Categorize(const beast::error_code& ec, bool connecting) {
  if (ec == beast::error::timeout) return "TIMEOUT";
  if (connecting) return "CONNECT_FAILED";
  if (ec == net::error::connection_reset || ec == net::error::broken_pipe) {
    return "CONNECTION_RESET";
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == net::error::eof) {
    return "CONNECTION_CLOSED";
  }
  if (ec.category() == beast::error_code(http::error::end_of_stream).category()) {
    return "BAD_RESPONSE";
  }
  return "IO_ERROR";
}

// One streaming POST /v1/completions. Owned by the handlers it has pending
// (shared_from_this); all of them run on the call's strand, so no locking.
class HttpCall : public std::enable_shared_from_this<HttpCall> {
 public:
  HttpCall(net::io_context& ioc, const Target& target, const Options& o, CallSink* sink,
           Planned plan, Clock::time_point scheduled)
      : stream_(net::make_strand(ioc)),
        target_(target),
        sink_(sink),
        plan_(std::move(plan)),
        disconnect_after_(o.disconnect_after_tokens) {
    record_.scheduled = scheduled;
    nlohmann::json body = {
        {"prompt", plan_.prompt},
        {"max_tokens", plan_.max_tokens},
        {"temperature", plan_.temperature},
        {"ignore_eos", true},
        {"stream", true},
        {"stream_options", {{"include_usage", true}}},
    };
    if (plan_.temperature > 0) body["seed"] = plan_.seed;
    if (!o.model.empty()) body["model"] = o.model;
    req_.method(http::verb::post);
    req_.target("/v1/completions");
    req_.version(11);
    req_.set(http::field::host, target_.host);
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::accept, "text/event-stream");
    req_.set("X-Request-Id", plan_.request_id);
    if (!o.api_key.empty()) req_.set(http::field::authorization, "Bearer " + o.api_key);
    req_.body() = body.dump();
    req_.prepare_payload();
    // Not boost::none: Boost 1.74 compares a Content-Length with an empty
    // optional limit as exceeded.
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(std::chrono::seconds(o.timeout_s));  // the whole call
  }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->record_.sent = Clock::now();
      self->stream_.async_connect(self->target_.endpoints,
                                  beast::bind_front_handler(&HttpCall::OnConnect, self));
    });
  }

 private:
  void OnConnect(beast::error_code ec, const tcp::endpoint&) {
    if (ec) return Fail(Categorize(ec, true), ec.message());
    http::async_write(stream_, req_,
                      beast::bind_front_handler(&HttpCall::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    if (ec) return Fail(Categorize(ec, false), ec.message());
    http::async_read_header(stream_, buffer_, parser_,
                            beast::bind_front_handler(&HttpCall::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec) return Fail(Categorize(ec, false), ec.message());
    status_ = parser_.get().result_int();
    ReadBody();
  }

  void ReadBody() {
    if (parser_.is_done()) return EndOfBody();
    parser_.get().body().data = chunk_;
    parser_.get().body().size = sizeof(chunk_);
    http::async_read_some(stream_, buffer_, parser_,
                          beast::bind_front_handler(&HttpCall::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, size_t) {
    const auto now = Clock::now();
    if (ec == http::error::need_buffer) ec = {};
    const size_t got = sizeof(chunk_) - parser_.get().body().size;
    const std::string_view bytes(chunk_, got);
    if (status_ != 200) {
      if (error_body_.size() < 65536) error_body_.append(bytes);
    } else if (got > 0) {
      sse_.Feed(bytes, [this, now](std::string_view data) { OnEvent(data, now); });
    }
    if (reported_) return;  // an error event or the client's hang-up ended it
    if (ec) return Fail(Categorize(ec, false), ec.message());
    ReadBody();
  }

  void OnEvent(std::string_view data, Clock::time_point now) {
    if (reported_) return;
    if (data == "[DONE]") {
      done_seen_ = true;
      return;
    }
    const nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return Fail("BAD_RESPONSE", "unparsable event: " + std::string(data.substr(0, 200)));
    }
    if (auto e = j.find("error"); e != j.end()) {
      return Fail("SSE_ERROR", e->is_object() ? e->value("message", e->dump()) : e->dump());
    }
    bool finished_here = false;
    if (auto c = j.find("choices"); c != j.end() && c->is_array() && !c->empty()) {
      const nlohmann::json& choice = c->front();
      const auto text = choice.find("text");
      if (text != choice.end() && text->is_string() &&
          !text->get_ref<const std::string&>().empty()) {
        if (text_chunks_ == 0) {
          record_.first_token = now;
        } else {
          chunk_gaps_ms_.push_back(Ms(now - record_.last_token));
        }
        record_.last_token = now;
        ++text_chunks_;
      }
      const auto finish = choice.find("finish_reason");
      if (finish != choice.end() && finish->is_string()) finished_ = finished_here = true;
    }
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
      usage_seen_ = true;
      record_.output_tokens = u->value("completion_tokens", int64_t{0});
      record_.prompt_tokens = u->value("prompt_tokens", int64_t{0});
      if (auto d = u->find("prompt_tokens_details"); d != u->end() && d->is_object()) {
        record_.cached_prompt_tokens = d->value("cached_tokens", int64_t{0});
      }
    }
    if (disconnect_after_ > 0 && text_chunks_ >= disconnect_after_ && !finished_here &&
        !finished_) {
      record_.disconnected = true;
      Report();  // closes the socket: the hang-up
    }
  }

  void EndOfBody() {
    if (status_ != 200) {
      std::string message = error_body_.substr(0, 300);
      const nlohmann::json j = nlohmann::json::parse(error_body_, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object()) {
        message = j["error"].value("message", message);
      }
      return Fail(absl::StrCat("HTTP_", status_), message);
    }
    if (!finished_ || !done_seen_) {
      return Fail("NO_FINISH", finished_ ? "the stream ended without data: [DONE]"
                                         : "the stream ended without a finish_reason");
    }
    Report();
  }

  void Fail(std::string failure, std::string error) {
    if (reported_) return;
    record_.failure = std::move(failure);
    // Where the call was, for a reader of the first failures.
    record_.error = absl::StrCat(error, " (HTTP status ", status_, ", ", text_chunks_,
                                 " text chunks, finish_reason ", finished_ ? "seen" : "not seen",
                                 ", [DONE] ", done_seen_ ? "seen" : "not seen", ")");
    Report();
  }

  // Closes the connection and hands the record over, once.
  void Report() {
    if (reported_) return;
    reported_ = true;
    record_.done = Clock::now();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    if (!usage_seen_ || record_.disconnected) record_.output_tokens = text_chunks_;
    if (!record_.disconnected && record_.failure.empty() && text_chunks_ > 0) {
      // The mean tokens per chunk spreads each gap over its tokens, as the
      // gRPC path does with the token ids of each message.
      const double per_chunk = static_cast<double>(record_.output_tokens) / text_chunks_;
      const int n = std::max(1, static_cast<int>(std::lround(per_chunk)));
      for (double gap : chunk_gaps_ms_) {
        for (int i = 0; i < n; ++i) record_.itl_ms.push_back(gap / std::max(1.0, per_chunk));
      }
    }
    sink_->Finished(plan_, std::move(record_), {});
  }

  beast::tcp_stream stream_;
  const Target& target_;
  CallSink* const sink_;
  const Planned plan_;
  const int disconnect_after_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  http::response_parser<http::buffer_body> parser_;
  char chunk_[16384];
  int status_ = 0;
  std::string error_body_;
  SseParser sse_;
  CallRecord record_;
  int64_t text_chunks_ = 0;
  std::vector<double> chunk_gaps_ms_;
  bool finished_ = false;   // a choice carried a finish_reason
  bool done_seen_ = false;  // data: [DONE]
  bool usage_seen_ = false;
  bool reported_ = false;
};

class OpenAiTransport final : public Transport {
 public:
  OpenAiTransport(const Options& o, Target target)
      : o_(o), target_(std::move(target)), work_(net::make_work_guard(ioc_)) {
    for (int i = 0; i < o.http_threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~OpenAiTransport() override {
    work_.reset();
    ioc_.stop();
    for (std::thread& t : threads_) t.join();
  }

  void Start(Planned plan, Clock::time_point scheduled, int64_t, CallSink* sink) override {
    std::make_shared<HttpCall>(ioc_, target_, o_, sink, std::move(plan), scheduled)->Start();
  }

 private:
  const Options& o_;
  const Target target_;
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> MakeOpenAiTransport(const Options& o) {
  std::string address = o.target;
  if (address.starts_with("http://")) address.erase(0, 7);
  while (!address.empty() && address.back() == '/') address.pop_back();
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return absl::InvalidArgumentError("--target must be HOST:PORT, got " + o.target);
  }
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  Target target;
  target.host = address;
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  target.endpoints = resolver.resolve(host, port, ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat("cannot resolve ", o.target, ": ", ec.message()));
  return std::make_unique<OpenAiTransport>(o, std::move(target));
}

}  // namespace tessera::bench
