// Tests of common/http's Server through a raw socket client (http_test_client.h): round trips,
// keep-alive and pipelining, limits and timeouts, streams, disconnects, shutdown, many
// concurrent streams, and random bytes. Everything on 127.0.0.1, port 0; every wait bounded.
#include "common/http/http_server.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/common/http_test_util.h"

namespace tessera::http {
namespace {

using testing::Counter;
using testing::Echo;
using testing::Get;
using testing::Parked;
using testing::RawClient;
using testing::StartServer;

TEST(HttpServerTest, GetAndPostRoundTrip) {
  auto server = StartServer(Echo);
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  RawClient client(server->port());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.Send(Get("/v1/models?x=1", "X-TEST: hello\r\n")));
  auto get = client.ReadResponse();
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "GET /v1/models x=1 ");
  EXPECT_EQ(get->header("x-echo"), "hello");
  EXPECT_EQ(get->header("content-type"), "text/plain");
  EXPECT_EQ(get->header("content-length"), std::to_string(get->body.size()));
  EXPECT_FALSE(get->header("date").empty());

  ASSERT_TRUE(client.Send(
      "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n{\"a\": true}"));
  auto post = client.ReadResponse();
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 200);
  EXPECT_EQ(post->body, "POST /v1/completions  {\"a\": true}");
}

TEST(HttpServerTest, KeepAliveServesThreeRequestsOnOneConnection) {
  Counter requests;
  std::vector<std::string> remotes;
  absl::Mutex mu;
  auto server = StartServer([&](Request request, std::shared_ptr<Exchange> exchange) {
    {
      absl::MutexLock lock(&mu);
      remotes.push_back(request.remote);
    }
    Echo(std::move(request), std::move(exchange));
  });
  RawClient client(server->port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.Send(Get(absl::StrCat("/r", i))));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, absl::StrCat("GET /r", i, "  "));
    EXPECT_EQ(r->header("connection"), "");
  }
  absl::MutexLock lock(&mu);
  ASSERT_EQ(remotes.size(), 3u);
  EXPECT_EQ(remotes[0], remotes[1]);
  EXPECT_EQ(remotes[1], remotes[2]);
  EXPECT_EQ(server->open_connections(), 1u);
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  // The first request is answered late, from another thread: the second must still come second.
  Parked parked;
  auto server = StartServer([&](Request request, std::shared_ptr<Exchange> exchange) {
    if (request.path == "/slow") {
      parked.Add(std::move(exchange));
    } else {
      Echo(std::move(request), std::move(exchange));
    }
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/slow") + Get("/b") +
                          "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"));
  ASSERT_TRUE(parked.WaitFor(1));
  std::thread([&] { parked.at(0)->Respond(Response{200, {}, "slow"}); }).join();
  auto a = client.ReadResponse();
  auto b = client.ReadResponse();
  auto c = client.ReadResponse();
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->body, "slow");
  EXPECT_EQ(b->body, "GET /b  ");
  EXPECT_EQ(c->body, "POST /c  xyz");
}

TEST(HttpServerTest, ConnectionCloseAndHttp10AreHonoured) {
  auto server = StartServer(Echo);
  {
    RawClient client(server->port());
    ASSERT_TRUE(client.Send(Get("/a", "Connection: close\r\n")));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(client.WaitClosed());
  }
  {
    RawClient client(server->port());
    ASSERT_TRUE(client.Send("GET /b HTTP/1.0\r\n\r\n"));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "GET /b  ");
    EXPECT_TRUE(client.WaitClosed());
  }
  {
    RawClient client(server->port());
    ASSERT_TRUE(client.Send("GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("connection"), "keep-alive");
    ASSERT_TRUE(client.Send("GET /d HTTP/1.0\r\n\r\n"));
    r = client.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "GET /d  ");
  }
}

TEST(HttpServerTest, ChunkedRequestBodyAndExpectContinue) {
  auto server = StartServer(Echo);
  RawClient client(server->port());
  ASSERT_TRUE(
      client.Send("POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                  "chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "POST /p  abcde");

  ASSERT_TRUE(client.Send(
      "POST /q HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = client.ReadResponse();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.Send("hello"));
  r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /q  hello");
}

TEST(HttpServerTest, DeclaredOversizedBodyIs413BeforeTheBodyIsSent) {
  Counter handled;
  ServerOptions options;
  options.max_body_bytes = 1024;
  auto server = StartServer(
      [&](Request r, std::shared_ptr<Exchange> e) {
        handled.Add();
        Echo(std::move(r), std::move(e));
      },
      options);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(client.WaitClosed());
  EXPECT_EQ(handled.count(), 0);
}

TEST(HttpServerTest, ChunkedBodyOverTheLimitIs413) {
  ServerOptions options;
  options.max_body_bytes = 1024;
  auto server = StartServer(Echo, options);
  RawClient client(server->port());
  std::string request = "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) absl::StrAppend(&request, "200\r\n", std::string(512, 'x'), "\r\n");
  absl::StrAppend(&request, "0\r\n\r\n");
  ASSERT_TRUE(client.Send(request));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(client.WaitClosed());
}

TEST(HttpServerTest, OversizedHeadersAre431) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  auto server = StartServer(Echo, options);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/", absl::StrCat("X-Big: ", std::string(4000, 'a'), "\r\n"))));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(client.WaitClosed());
}

TEST(HttpServerTest, SlowHeadersAre408) {
  ServerOptions options;
  options.header_timeout = absl::Milliseconds(200);
  auto server = StartServer(Echo, options);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET / HTTP/1.1\r\nHost: t\r\n"));  // never finished
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(client.WaitClosed());
}

TEST(HttpServerTest, GarbageIs400AndClosed) {
  auto server = StartServer(Echo);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(std::string("\x01\x02 garbage\xff\r\n\r\n", 15)));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(client.WaitClosed());
}

TEST(HttpServerTest, CustomErrorResponseAndHandlerException) {
  ServerOptions options;
  options.error_response = [](int status, std::string_view message) {
    return Response{status,
                    {{"content-type", "application/json"}},
                    "{\"error\":{\"message\":\"" + std::string(message) + "\"}}"};
  };
  auto server = StartServer(
      [](Request request, std::shared_ptr<Exchange> exchange) {
        if (request.path == "/throw") throw std::runtime_error("boom");
        Echo(std::move(request), std::move(exchange));
      },
      options);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/throw")));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(r->body, "{\"error\":{\"message\":\"internal server error\"}}");
  ASSERT_TRUE(client.Send(Get("/ok")));  // the connection and the server go on
  r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace tessera::http
