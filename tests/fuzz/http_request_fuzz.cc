// Fuzz target: the bytes a client sends on one connection to the HTTP/1.1
// server (common/http: Beast's parser, pipelining, chunked bodies,
// Expect: 100-continue, the header/body limits and the error responses the
// server makes itself). One server on 127.0.0.1 lives for the whole run; each
// input is written on a fresh loopback connection, the write side is shut,
// and the answer is read until the server closes. Findings: a sanitizer
// report or crash in any server thread, or a connection the server does not
// close within kCloseWithin of the client's end of input (a hang).
//
// The handler answers /stream with a chunked stream of the body and anything
// else with one response that echoes what was parsed, so both output paths
// run after every request the parser accepts.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/http/http_server.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

namespace http = tessera::http;

constexpr auto kCloseWithin = std::chrono::seconds(10);

http::Server* g_server = nullptr;  // lives until exit

void Handle(http::Request request, std::shared_ptr<http::Exchange> exchange) {
  if (request.path == "/stream") {
    exchange->StartStream(200, {{"content-type", "text/event-stream"}});
    exchange->Write(absl::StrCat("data: ", request.body.size(), "\n\n"), nullptr);
    exchange->Write(std::move(request.body), nullptr);
    exchange->End();
    return;
  }
  http::Response response;
  response.status = request.path == "/missing" ? 404 : 200;
  response.headers = {{"content-type", "text/plain"}};
  response.body =
      absl::StrCat(request.method, " ", request.path, " ?", std::string(request.query()), " ",
                   request.headers.size(), " headers, host ", std::string(request.header("host")),
                   ", ", request.body.size(), " body bytes, HTTP/", request.version);
  exchange->Respond(std::move(response));
}

// A connected socket (loopback connects at once), then made non-blocking.
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  TESSERA_FUZZ_CHECK(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  TESSERA_FUZZ_CHECK(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
  TESSERA_FUZZ_CHECK(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  http::ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.threads = 2;
  // Small limits, so inputs of a few KiB reach them (431, 413).
  options.max_header_bytes = 2048;
  options.max_body_bytes = 4096;
  // Well inside kCloseWithin: a server that waits for more input gives up in time.
  options.header_timeout = absl::Seconds(2);
  options.body_timeout = absl::Seconds(2);
  options.idle_timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<http::Server>> server = http::Server::Start(options, Handle);
  if (!server.ok()) {
    std::fprintf(stderr, "http_request_fuzz: %s\n", server.status().ToString().c_str());
    std::abort();
  }
  g_server = server->release();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = Connect(g_server->port());
  // Writes and reads interleave: the server answers while it reads, and a
  // client that only wrote could fill both socket buffers and stall.
  size_t written = 0;
  bool shut = false;
  const auto deadline = std::chrono::steady_clock::now() + kCloseWithin;
  char buffer[16 * 1024];
  for (;;) {
    if (written == size && !shut) {
      // The end of input (ENOTCONN: the server already reset the connection).
      TESSERA_FUZZ_CHECK(::shutdown(fd, SHUT_WR) == 0 || errno == ENOTCONN);
      shut = true;
    }
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) {
      std::fprintf(stderr,
                   "http_request_fuzz: the server kept the connection open for %lld s "
                   "after the end of input\n",
                   static_cast<long long>(kCloseWithin.count()));
      std::abort();
    }
    pollfd p{fd, static_cast<short>(POLLIN | (written < size ? POLLOUT : 0)), 0};
    const int ready = ::poll(
        &p, 1,
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count()) + 1);
    if (ready < 0 && errno == EINTR) continue;
    TESSERA_FUZZ_CHECK(ready >= 0);
    if (ready == 0) continue;
    if (p.revents & POLLIN || p.revents & (POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      // 0: the server closed; an error: it reset the connection. Either way, done.
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
    }
    if (written < size && (p.revents & POLLOUT)) {
      const ssize_t n = ::send(fd, data + written, size - written, MSG_NOSIGNAL);
      if (n > 0) {
        written += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        break;  // the server closed early (an error response, then close): done
      }
    }
  }
  // An abortive close: no TIME_WAIT left behind for each of the many connections of a run.
  const linger abort_close{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
  ::close(fd);
  return 0;
}
