// An asynchronous HTTP/1.1 server (Boost.Beast's parser over Boost.Asio): one io_context run by
// `threads` threads, each connection on its own strand, so thousands of long-lived responses
// (Server-Sent-Event streams) share a few threads. It knows nothing about what it serves: a
// `Handler` gets each parsed request with an `Exchange` through which it answers, at once or
// later, from any thread, as one complete response or as a chunked stream.
//
// Per connection: keep-alive and pipelining (responses in request order; the next request is
// parsed once the previous response has been written), `Connection: close` and HTTP/1.0,
// request bodies by Content-Length or chunked, `Expect: 100-continue`. While a response is
// pending the server keeps reading, so a client that leaves is noticed at once (OnClientClose).
// Limits: header and body sizes (431 / 413 and close), header, body and idle timeouts (408 and
// close), malformed requests (400 and close). The server makes those responses itself, with
// `ServerOptions::error_response`.
//
// Thread-safety: `Server` is thread-safe (Shutdown from any thread that is not a server thread).
// `Exchange` is thread-safe. The handler runs on server threads, concurrently for different
// connections, and must not block: hand the work elsewhere and answer through the Exchange.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tessera::http {

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query
  std::string path;    // target without "?query"
  std::vector<Header> headers;
  std::string body;    // the decoded body (chunked bodies are de-chunked)
  std::string remote;  // "ip:port" of the client
  int version = 11;    // 11 for HTTP/1.1, 10 for HTTP/1.0

  // The first header called `name` (case-insensitive); "" when absent.
  std::string_view header(std::string_view name) const;
  // `target`'s query, without the "?"; "" when there is none.
  std::string_view query() const;
};

struct Response {
  int status = 200;
  // e.g. {"content-type", "application/json"}. The server owns the framing: it adds
  // content-length (or transfer-encoding), connection and date, and drops those names here.
  std::vector<Header> headers;
  std::string body;
};

// One request's answer, handed to the handler. Thread-safe: any thread may call any method,
// also after the client left or the server shut down (then it does nothing; Write's callback
// gets ok=false). No method runs a callback inline: callbacks run on a server thread (after the
// server has shut down, on a thread of their own), never under a lock the caller holds.
// A response is either `Respond` once, or `StartStream`, any number of `Write`s, `End`; calls
// out of that order (a second Respond, Write before StartStream, anything after the end) are
// ignored (Write's callback gets ok=false).
class Exchange {
 public:
  virtual ~Exchange() = default;
  // A complete response, with content-length. For HEAD requests the body is not sent.
  virtual void Respond(Response response) = 0;
  // Starts a chunked (transfer-encoding) response; for an HTTP/1.0 client the body is
  // delimited by closing the connection instead. `cache-control` is left to the caller.
  virtual void StartStream(int status, std::vector<Header> headers) = 0;
  // Queues one chunk (writes may be queued back to back); `done(ok)` runs on a server thread
  // once the bytes were handed to the socket (ok=true) or the connection is gone (ok=false).
  // `done` may be empty. An empty `data` sends nothing (it never ends the stream).
  virtual void Write(std::string data, std::function<void(bool ok)> done) = 0;
  // The last chunk; the connection then goes on with its next request (keep-alive).
  virtual void End() = 0;
  // Runs once, on a server thread, when the client disconnects (or the server closes the
  // connection at shutdown) before the response has ended, also while the handler has not
  // answered yet. Runs at once if that already happened; never if the response ended first.
  // A later call replaces an earlier callback that has not run.
  virtual void OnClientClose(std::function<void()> on_close) = 0;
  // True once the connection this exchange belongs to is gone.
  virtual bool closed() const = 0;
};

using Handler = std::function<void(Request request, std::shared_ptr<Exchange> exchange)>;

struct ServerOptions {
  std::string host = "0.0.0.0";  // an address or a name to resolve
  int port = 8000;               // 0 = a free port (see Server::port())
  int threads = 2;
  size_t max_header_bytes = 16 * 1024;  // over: 431 and close
  size_t max_body_bytes = 8 << 20;      // over: 413 and close (Content-Length checked first)
  // A request's headers must arrive within this of its first byte (slowloris): 408 and close.
  // A new connection that sends nothing for this long is closed.
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration body_timeout = absl::Seconds(30);  // from the end of the headers: 408, close
  absl::Duration idle_timeout = absl::Seconds(60);  // keep-alive connection with no request
  // Body of the responses the server makes itself (400 malformed, 408, 413, 431, 500 when the
  // handler throws, 503 during shutdown). Default: text/plain with the message. It runs on
  // server threads and must not throw.
  std::function<Response(int status, std::string_view message)> error_response;
};

class ServerCore;

class Server {
 public:
  // Binds, listens and starts the threads. UNAVAILABLE naming host:port when the address does
  // not resolve or bind fails; INVALID_ARGUMENT for options out of range.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options, Handler handler);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();  // Shutdown(absl::ZeroDuration()) if not done

  int port() const;  // the bound port (the free one chosen when options.port was 0)

  // Stops accepting, closes idle keep-alive connections, answers requests that arrive from now
  // on with 503, lets responses in progress end for up to `grace`, then closes the rest (their
  // OnClientClose callbacks run) and joins the threads. Idempotent; later calls return at
  // once. Must not be called from a server thread (a handler or a callback).
  void Shutdown(absl::Duration grace);

  // Connections open now (for tests and metrics).
  size_t open_connections() const;

 private:
  explicit Server(std::shared_ptr<ServerCore> core);
  std::shared_ptr<ServerCore> core_;
};

}  // namespace tessera::http
