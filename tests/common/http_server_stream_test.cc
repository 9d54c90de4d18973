// Tests of common/http's Server, response side: chunked streams, clients that leave, exchanges
// that outlive the server, shutdown with open streams, many concurrent streams, random bytes.
#include <sys/resource.h>

#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/http/http_server.h"
#include "gtest/gtest.h"
#include "tests/common/http_test_util.h"

namespace tessera::http {
namespace {

using testing::Counter;
using testing::Echo;
using testing::Get;
using testing::kWait;
using testing::Parked;
using testing::RawClient;
using testing::StartServer;

// Streams: StartStream at once, then parks the exchange for the test.
Handler StreamingHandler(Parked* parked) {
  return [parked](Request, std::shared_ptr<Exchange> exchange) {
    exchange->StartStream(200,
                          {{"content-type", "text/event-stream"}, {"cache-control", "no-cache"}});
    parked->Add(std::move(exchange));
  };
}

TEST(HttpServerStreamTest, ChunksArriveAndKeepAliveContinues) {
  Parked parked;
  auto server = StartServer([&](Request request, std::shared_ptr<Exchange> exchange) {
    if (request.path == "/stream") return StreamingHandler(&parked)(std::move(request), exchange);
    Echo(std::move(request), std::move(exchange));
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/stream")));
  ASSERT_TRUE(parked.WaitFor(1));
  auto exchange = parked.at(0);
  const std::vector<std::string> events = {"data: one\n\n", "data: two\n\n", "",
                                           std::string(70000, 'x'), "data: [DONE]\n\n"};
  Counter ok, failed;
  for (const std::string& e : events)
    exchange->Write(e, [&](bool good) { (good ? ok : failed).Add(); });
  exchange->End();
  exchange->Write("late", [&](bool good) { (good ? ok : failed).Add(); });  // after End: ignored

  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->header("content-type"), "text/event-stream");
  EXPECT_EQ(r->header("cache-control"), "no-cache");
  EXPECT_EQ(r->header("content-length"), "");
  const std::vector<std::string> sent = {events[0], events[1], events[3], events[4]};
  EXPECT_EQ(r->chunks, sent);  // the empty write sent no chunk
  ASSERT_TRUE(ok.WaitFor(5));
  ASSERT_TRUE(failed.WaitFor(1));
  EXPECT_EQ(ok.count(), 5);
  EXPECT_FALSE(exchange->closed());

  ASSERT_TRUE(client.Send(Get("/after")));
  r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /after  ");
}

TEST(HttpServerStreamTest, Http10StreamEndsWithTheConnection) {
  Parked parked;
  auto server = StartServer(StreamingHandler(&parked));
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /s HTTP/1.0\r\n\r\n"));
  ASSERT_TRUE(parked.WaitFor(1));
  parked.at(0)->Write("abc", nullptr);
  parked.at(0)->Write("def", nullptr);
  parked.at(0)->End();
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->chunked);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_EQ(r->body, "abcdef");
}

TEST(HttpServerStreamTest, ClientLeavingMidStreamRunsOnClientCloseAndFailsWrites) {
  Parked parked;
  auto server = StartServer(StreamingHandler(&parked));
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/stream")));
  ASSERT_TRUE(parked.WaitFor(1));
  auto exchange = parked.at(0);
  absl::Notification closed;
  exchange->OnClientClose([&] { closed.Notify(); });
  Counter first;
  exchange->Write("data: 1\n\n", [&](bool good) {
    EXPECT_TRUE(good);
    first.Add();
  });
  ASSERT_TRUE(first.WaitFor(1));
  client.Close();
  ASSERT_TRUE(closed.WaitForNotificationWithTimeout(kWait));
  EXPECT_TRUE(exchange->closed());
  absl::Notification failed;
  exchange->Write("data: 2\n\n", [&](bool good) {
    EXPECT_FALSE(good);
    failed.Notify();
  });
  ASSERT_TRUE(failed.WaitForNotificationWithTimeout(kWait));
  // Registering after the close runs the callback at once (on a server thread).
  absl::Notification again;
  exchange->OnClientClose([&] { again.Notify(); });
  ASSERT_TRUE(again.WaitForNotificationWithTimeout(kWait));
}

TEST(HttpServerStreamTest, ClientLeavingBeforeTheAnswerRunsOnClientClose) {
  Parked parked;
  Counter closes;
  auto server = StartServer([&](Request, std::shared_ptr<Exchange> exchange) {
    exchange->OnClientClose([&] { closes.Add(); });
    parked.Add(std::move(exchange));  // no answer yet
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/wait")));
  ASSERT_TRUE(parked.WaitFor(1));
  client.Reset();
  ASSERT_TRUE(closes.WaitFor(1));
  EXPECT_TRUE(parked.at(0)->closed());
  parked.at(0)->Respond(Response{200, {}, "too late"});  // does nothing

  RawClient other(server->port());
  ASSERT_TRUE(other.Send(Get("/wait")));
  ASSERT_TRUE(parked.WaitFor(2));
  EXPECT_FALSE(parked.at(1)->closed());
  parked.at(1)->Respond(Response{200, {}, "in time"});
  auto r = other.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "in time");
  server->Shutdown(absl::ZeroDuration());
  EXPECT_EQ(closes.count(), 1);  // the answered request's callback never runs
}

TEST(HttpServerStreamTest, ShutdownWithOpenStreamsEndsWithinGrace) {
  Parked parked;
  Counter closes;
  auto server = StartServer([&](Request request, std::shared_ptr<Exchange> exchange) {
    if (request.path == "/idle") return Echo(std::move(request), std::move(exchange));
    exchange->OnClientClose([&] { closes.Add(); });
    StreamingHandler (&parked)(std::move(request), std::move(exchange));
  });
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<RawClient>(server->port()));
    ASSERT_TRUE(clients.back()->Send(Get("/stream")));
  }
  RawClient idle(server->port());  // a keep-alive connection between requests
  ASSERT_TRUE(idle.Send(Get("/idle")));
  ASSERT_TRUE(idle.ReadResponse());
  ASSERT_TRUE(parked.WaitFor(3));

  const absl::Duration grace = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  server->Shutdown(grace);
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, grace);
  EXPECT_LT(took, grace + absl::Seconds(2));
  EXPECT_EQ(closes.count(), 3);  // the callbacks ran before Shutdown returned
  EXPECT_EQ(server->open_connections(), 0u);
  for (auto& client : clients) EXPECT_TRUE(client->WaitClosed());
  EXPECT_TRUE(idle.WaitClosed());
  server->Shutdown(grace);  // idempotent

  // The exchanges outlive the server: calls do nothing, callbacks still come (ok=false).
  absl::Notification failed;
  parked.at(0)->Write("x", [&](bool good) {
    EXPECT_FALSE(good);
    failed.Notify();
  });
  ASSERT_TRUE(failed.WaitForNotificationWithTimeout(kWait));
  server.reset();
  parked.at(1)->End();
  absl::Notification closed_after;
  parked.at(2)->OnClientClose([&] { closed_after.Notify(); });
  ASSERT_TRUE(closed_after.WaitForNotificationWithTimeout(kWait));
}

TEST(HttpServerStreamTest, ShutdownLetsAStreamEndWithinGrace) {
  Parked parked;
  auto server = StartServer(StreamingHandler(&parked));
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/stream")));
  ASSERT_TRUE(parked.WaitFor(1));
  absl::Notification first;
  parked.at(0)->Write("first ", [&](bool) { first.Notify(); });
  ASSERT_TRUE(first.WaitForNotificationWithTimeout(kWait));  // the head went out before
  std::thread finisher([&] {
    parked.at(0)->Write("last", nullptr);
    parked.at(0)->End();
  });
  const absl::Time start = absl::Now();
  server->Shutdown(absl::Seconds(5));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));  // it did not wait out the grace
  finisher.join();
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "first last");
  EXPECT_EQ(r->header("connection"), "");  // it started before the shutdown
  EXPECT_TRUE(client.WaitClosed());
}

// 1000 streams open at once on two server threads, each then written to and ended.
TEST(HttpServerHeavyTest, ThousandConcurrentStreams) {
  constexpr int kStreams = 1000;
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  const rlim_t want = 2 * kStreams + 200;
  if (limit.rlim_cur < want) {
    if (limit.rlim_max < want) GTEST_SKIP() << "needs " << want << " file descriptors";
    limit.rlim_cur = want;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  }
  Parked parked;
  ServerOptions options;
  options.threads = 2;
  auto server = StartServer(StreamingHandler(&parked), options);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.push_back(std::make_unique<RawClient>(server->port(), absl::Seconds(8)));
    ASSERT_TRUE(clients.back()->ok()) << i;
    ASSERT_TRUE(clients.back()->Send(Get(absl::StrCat("/s", i))));
  }
  ASSERT_TRUE(parked.WaitFor(kStreams, absl::Seconds(8)));
  EXPECT_EQ(server->open_connections(), static_cast<size_t>(kStreams));
  Counter done;
  for (const auto& exchange : parked.all()) {
    for (int k = 0; k < 3; ++k) exchange->Write(absl::StrCat("data: ", k, "\n\n"), nullptr);
    exchange->Write("data: [DONE]\n\n", [&](bool good) { done.Add(good ? 1 : 0); });
    exchange->End();
  }
  for (int i = 0; i < kStreams; ++i) {
    auto r = clients[i]->ReadResponse();
    ASSERT_TRUE(r) << i;
    ASSERT_EQ(r->chunks.size(), 4u) << i;
    EXPECT_EQ(r->chunks[3], "data: [DONE]\n\n");
  }
  EXPECT_TRUE(done.WaitFor(kStreams, absl::Seconds(8)));
}

// Random bytes, and random damage to real requests, on fresh connections; each one must be
// answered or closed by the server, and the server must still serve afterwards.
TEST(HttpServerStreamTest, RandomBytesNeverBreakTheServer) {
  ServerOptions options;
  options.header_timeout = absl::Milliseconds(500);
  options.max_header_bytes = 2048;
  options.max_body_bytes = 4096;
  auto server = StartServer(Echo, options);
  std::mt19937 rng(20240611);
  const std::vector<std::string> seeds = {
      Get("/x"), "POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789",
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\n"};
  for (int i = 0; i < 300; ++i) {
    std::string bytes;
    const int kind = static_cast<int>(rng() % 3);
    if (kind == 0) {  // pure noise
      bytes.resize(rng() % 3000);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {  // a real request with bytes flipped, cut or inserted
      bytes = seeds[rng() % seeds.size()];
      for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n && !bytes.empty(); ++k) {
        const size_t at = rng() % bytes.size();
        switch (rng() % 3) {
          case 0:
            bytes[at] = static_cast<char>(rng());
            break;
          case 1:
            bytes.resize(at);
            break;
          default:
            bytes.insert(at, std::string(rng() % 64, static_cast<char>(rng())));
            break;
        }
      }
      if (kind == 2) bytes += bytes;  // pipelined
    }
    RawClient client(server->port());
    ASSERT_TRUE(client.ok());
    client.Send(bytes);  // the server may close first
    if (rng() % 4 == 0) {
      client.Reset();
      continue;
    }
    client.ShutdownWrite();
    ASSERT_TRUE(client.WaitClosed()) << "iteration " << i;
  }
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/still-alive")));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /still-alive  ");
}

}  // namespace
}  // namespace tessera::http
