// Helpers for the HTTP server's tests. RawClient: a raw-socket HTTP/1.1 client that sends
// exactly the bytes a test gives it and decodes responses itself (content-length, chunked with
// the chunks kept, or until close), so the server's framing is checked by code independent of
// Beast; every read is bounded by its timeout (SO_RCVTIMEO); one per thread. Counter and
// Parked: bounded waits on what handlers and callbacks report.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http/http_server.h"
#include "gtest/gtest.h"

namespace tessera::http::testing {

struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::vector<std::string> chunks;  // with chunked transfer-encoding
  bool chunked = false;

  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return "";
  }
};

class RawClient {
 public:
  explicit RawClient(int port, absl::Duration timeout = absl::Seconds(5)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return;
    timeval tv{};
    tv.tv_sec = absl::ToInt64Seconds(timeout);
    tv.tv_usec = absl::ToInt64Microseconds(timeout) % 1000000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Close();
  }
  ~RawClient() { Close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool ok() const { return fd_ >= 0; }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One response (a 100 Continue is a response of its own). nullopt when the connection ends
  // or times out first, or the framing is wrong. `head_request`: the response has no body.
  std::optional<RawResponse> ReadResponse(bool head_request = false) {
    RawResponse r;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
    std::vector<std::string> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
    if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &r.status)) {
      return std::nullopt;
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == std::string::npos) return std::nullopt;
      r.headers.emplace_back(absl::AsciiStrToLower(lines[i].substr(0, colon)),
                             std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
    }
    if (head_request || r.status < 200 || r.status == 204 || r.status == 304) return r;
    if (r.header("transfer-encoding") == "chunked") {
      r.chunked = true;
      for (;;) {
        size_t eol;
        while ((eol = buf_.find("\r\n")) == std::string::npos) {
          if (!Fill()) return std::nullopt;
        }
        size_t size = 0;
        if (eol == 0 || !absl::SimpleHexAtoi(buf_.substr(0, eol), &size)) return std::nullopt;
        buf_.erase(0, eol + 2);
        if (!Need(size + 2) || buf_.compare(size, 2, "\r\n") != 0) return std::nullopt;
        if (size == 0) {
          buf_.erase(0, 2);
          return r;
        }
        r.chunks.push_back(buf_.substr(0, size));
        r.body += r.chunks.back();
        buf_.erase(0, size + 2);
      }
    }
    const std::string length = r.header("content-length");
    if (!length.empty()) {
      size_t n = 0;
      if (!absl::SimpleAtoi(length, &n) || !Need(n)) return std::nullopt;
      r.body = buf_.substr(0, n);
      buf_.erase(0, n);
      return r;
    }
    while (Fill()) {
    }
    if (!eof_) return std::nullopt;  // timed out before the close that ends the body
    r.body = std::move(buf_);
    buf_.clear();
    return r;
  }

  // True when the server closes the connection within the timeout (input read is dropped).
  bool WaitClosed() {
    while (Fill()) buf_.clear();
    return eof_;
  }

  // Half-close: no more requests; the server sees EOF.
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // An abortive close: the server sees a reset.
  void Reset() {
    if (fd_ < 0) return;
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    Close();
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  // Reads more; false on EOF (eof_ set), reset, or timeout.
  bool Fill() {
    if (fd_ < 0) return false;
    char data[16384];
    const ssize_t n = ::recv(fd_, data, sizeof(data), 0);
    if (n > 0) {
      buf_.append(data, static_cast<size_t>(n));
      return true;
    }
    if (n == 0 || errno == ECONNRESET) eof_ = true;
    return false;
  }
  bool Need(size_t n) {
    while (buf_.size() < n) {
      if (!Fill()) return false;
    }
    return true;
  }

  int fd_ = -1;
  bool eof_ = false;
  std::string buf_;
};

inline constexpr absl::Duration kWait = absl::Seconds(5);

// Counts events; waits (bounded) for a number of them.
class Counter {
 public:
  void Add(int n = 1) {
    absl::MutexLock lock(&mu_);
    count_ += n;
  }
  bool WaitFor(int n, absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return count_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  int count() {
    absl::MutexLock lock(&mu_);
    return count_;
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

// Exchanges the handler keeps for the test to answer.
class Parked {
 public:
  void Add(std::shared_ptr<Exchange> exchange) {
    absl::MutexLock lock(&mu_);
    exchanges_.push_back(std::move(exchange));
  }
  bool WaitFor(size_t n, absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return exchanges_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  std::shared_ptr<Exchange> at(size_t i) {
    absl::MutexLock lock(&mu_);
    return exchanges_.at(i);
  }
  std::vector<std::shared_ptr<Exchange>> all() {
    absl::MutexLock lock(&mu_);
    return exchanges_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::shared_ptr<Exchange>> exchanges_ ABSL_GUARDED_BY(mu_);
};

inline std::unique_ptr<Server> StartServer(Handler handler, ServerOptions options = {}) {
  options.host = "127.0.0.1";
  options.port = 0;
  auto server = Server::Start(std::move(options), std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

// Answers with "METHOD path query body" and echoes x-test.
inline void Echo(Request request, std::shared_ptr<Exchange> exchange) {
  Response response;
  response.headers.push_back({"content-type", "text/plain"});
  response.headers.push_back({"x-echo", std::string(request.header("X-Test"))});
  response.body =
      request.method + " " + request.path + " " + std::string(request.query()) + " " + request.body;
  exchange->Respond(std::move(response));
}

inline std::string Get(std::string_view target, std::string_view extra = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" + std::string(extra) + "\r\n";
}

}  // namespace tessera::http::testing
