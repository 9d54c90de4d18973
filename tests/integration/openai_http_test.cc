// The router's HTTP API at the HTTP level, with a raw socket client (what the
// SDK cannot send or does not show): /health, /version, unknown routes and
// methods, a body over --max-request-body, bodies that are not JSON, vLLM's
// /tokenize and /detokenize, a streamed response read as raw SSE, and clients
// that disconnect mid-stream — after which every worker is back to 0 running
// requests and no referenced KV blocks.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"

namespace tessera::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// A connected loopback socket to "127.0.0.1:P"; -1 on failure.
int Connect(const std::string& address) {
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Reads until the peer closes, `until` appears, or `timeout` passes.
std::string Receive(int fd, milliseconds timeout, const std::string& until = "") {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[8192];
  while (true) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline -
                                                               std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

struct HttpResult {
  int status = 0;
  std::string head;
  std::string body;  // as received (chunked bodies are left encoded)
};

// One request on its own connection (Connection: close).
HttpResult Http(const std::string& address, const std::string& method, const std::string& path,
                const std::string& body = "", const std::string& extra_headers = "") {
  HttpResult r;
  const int fd = Connect(address);
  if (fd < 0) return r;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
                    extra_headers;
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n";
  }
  req += "\r\n" + body;
  SendAll(fd, req);
  const std::string all = Receive(fd, milliseconds(60000));
  close(fd);
  const size_t end = all.find("\r\n\r\n");
  if (all.size() < 12 || end == std::string::npos) return r;
  r.status = std::stoi(all.substr(9, 3));
  r.head = all.substr(0, end);
  r.body = all.substr(end + 4);
  return r;
}

json ErrorOf(const HttpResult& r) {
  try {
    return json::parse(r.body).at("error");
  } catch (const std::exception&) {
    return json::object();
  }
}

class OpenAiHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveStories()) return;
    RouterClusterOptions options;
    options.replicas = 2;
    options.worker_args = StoriesWorkerArgs();
    options.router.extra_args = {"--max-request-body", "4096"};
    std::string error;
    cluster_ = RouterCluster::Start(options, &error).release();
    if (cluster_ == nullptr) ADD_FAILURE() << error;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    TESSERA_REQUIRE_STORIES();
    ASSERT_NE(cluster_, nullptr);
  }
  const std::string& http() const { return cluster_->http_address(); }

  static RouterCluster* cluster_;
};
RouterCluster* OpenAiHttpTest::cluster_ = nullptr;

TEST_F(OpenAiHttpTest, HealthVersionModelsAndRoutes) {
  const HttpResult health = Http(http(), "GET", "/health");
  EXPECT_EQ(health.status, 200) << health.head << health.body;
  const HttpResult version = Http(http(), "GET", "/version");
  ASSERT_EQ(version.status, 200);
  EXPECT_TRUE(json::parse(version.body).contains("version")) << version.body;
  const HttpResult models = Http(http(), "GET", "/v1/models");
  ASSERT_EQ(models.status, 200) << models.body;
  const json list = json::parse(models.body);
  EXPECT_EQ(list.at("object"), "list");
  EXPECT_EQ(list.at("data")[0].at("id"), "stories260K");

  const HttpResult missing = Http(http(), "GET", "/v1/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_FALSE(ErrorOf(missing).empty()) << missing.body;
  const HttpResult method = Http(http(), "GET", "/v1/completions");
  EXPECT_EQ(method.status, 405) << method.body;
}

TEST_F(OpenAiHttpTest, BadBodiesAre4xxNever500) {
  const HttpResult not_json = Http(http(), "POST", "/v1/completions", "{not json");
  EXPECT_EQ(not_json.status, 400) << not_json.body;
  EXPECT_FALSE(ErrorOf(not_json).empty());
  const HttpResult not_object = Http(http(), "POST", "/v1/chat/completions", "[1,2]");
  EXPECT_EQ(not_object.status, 400) << not_object.body;
  const HttpResult no_messages = Http(http(), "POST", "/v1/chat/completions", R"({"model":""})");
  EXPECT_EQ(no_messages.status, 400) << no_messages.body;
  const HttpResult wrong_type =
      Http(http(), "POST", "/v1/completions", R"({"prompt":"x","max_tokens":"many"})");
  EXPECT_EQ(wrong_type.status, 400) << wrong_type.body;
  EXPECT_EQ(ErrorOf(wrong_type).value("param", ""), "max_tokens") << wrong_type.body;
  const HttpResult bad_ids = Http(http(), "POST", "/v1/completions", R"({"prompt":[1,99999]})");
  EXPECT_EQ(bad_ids.status, 400) << bad_ids.body;
  // Over --max-request-body (4096 here): 413.
  const std::string big = R"({"prompt":")" + std::string(8000, 'a') + R"("})";
  const HttpResult too_big = Http(http(), "POST", "/v1/completions", big);
  EXPECT_EQ(too_big.status, 413) << too_big.head;
}

TEST_F(OpenAiHttpTest, TokenizeAndDetokenizeRoundTrip) {
  const HttpResult t = Http(http(), "POST", "/tokenize", R"({"prompt":"Once upon a time"})");
  ASSERT_EQ(t.status, 200) << t.body;
  const json tokens = json::parse(t.body);
  // BOS + the four words, as run.c encodes them (text_reference.jsonl).
  EXPECT_EQ(tokens.at("tokens"), json::array({1, 403, 407, 261, 378}));
  EXPECT_EQ(tokens.at("count"), 5);
  const HttpResult d =
      Http(http(), "POST", "/detokenize", json{{"tokens", json::array({403, 407, 261, 378})}}.dump());
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(json::parse(d.body).at("prompt"), "Once upon a time");
  const HttpResult bad = Http(http(), "POST", "/detokenize", R"({"tokens":[1,100000]})");
  EXPECT_EQ(bad.status, 400) << bad.body;
}

TEST_F(OpenAiHttpTest, StreamIsServerSentEventsEndingWithDone) {
  const HttpResult r = Http(
      http(), "POST", "/v1/chat/completions",
      R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":8,"stream":true,"ignore_eos":true)"
      R"(,"stream_options":{"include_usage":true}})");
  // stories260K has no chat template of its own: a clear 400.
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(ErrorOf(r).value("message", "").find("chat template"), std::string::npos) << r.body;

  const HttpResult s = Http(http(), "POST", "/v1/completions",
                            R"({"prompt":"Once upon a time","max_tokens":8,"stream":true,)"
                            R"("ignore_eos":true,"stream_options":{"include_usage":true}})");
  ASSERT_EQ(s.status, 200) << s.head;
  EXPECT_NE(s.head.find("text/event-stream"), std::string::npos) << s.head;
  EXPECT_NE(s.body.find("data: {"), std::string::npos);
  EXPECT_NE(s.body.find("\"completion_tokens\":8"), std::string::npos) << s.body;
  EXPECT_NE(s.body.find("data: [DONE]"), std::string::npos) << s.body;
}

TEST_F(OpenAiHttpTest, ClientsThatLeaveMidStreamFreeEverything) {
  constexpr int kClients = 40;
  std::vector<int> fds;
  const std::string body =
      R"({"prompt":"Once upon a time","max_tokens":400,"stream":true,"ignore_eos":true})";
  for (int i = 0; i < kClients; ++i) {
    const int fd = Connect(http());
    ASSERT_GE(fd, 0);
    SendAll(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body);
    fds.push_back(fd);
  }
  // Each reads its first event, then leaves.
  for (int fd : fds) {
    const std::string got = Receive(fd, milliseconds(30000), "data: ");
    EXPECT_NE(got.find("data: "), std::string::npos) << got.substr(0, 300);
    close(fd);
  }
  // Every worker ends every sequence and releases every block it held.
  for (int i = 0; i < 2; ++i) {
    std::optional<tessera::v1::LoadReport> load;
    const bool idle = PollUntil(milliseconds(20000), [&] {
      load = cluster_->ReplicaLoad(i);
      return load.has_value() && load->running() == 0 && load->waiting() == 0 &&
             load->kv_blocks_used() == 0;
    });
    EXPECT_TRUE(idle) << "replica " << i << ": "
                      << (load ? load->ShortDebugString() : std::string("no load report"));
  }
  // And the router serves on.
  const HttpResult after = Http(http(), "POST", "/v1/completions",
                                R"({"prompt":"Once upon a time","max_tokens":4})");
  EXPECT_EQ(after.status, 200) << after.body;
}

}  // namespace
}  // namespace tessera::testing

namespace tessera::testing {
namespace {

// A stream whose first tokens decode to no text yet (the byte tokenizer's
// bytes of an unfinished UTF-8 sequence): the response still starts, and
// ends with [DONE]. This prompt's greedy continuation on the dummy `tiny`
// model (fixed weights) begins with such bytes.
TEST(OpenAiHttpDummyTest, StreamStartsAlsoWhenTheFirstTokensHaveNoText) {
  RouterClusterOptions options;
  options.replicas = 1;
  options.worker_args = {"--dummy", "tiny",          "--device",    "cpu",
                         "--threads", "1",           "--log-level", WorkerLogLevel()};
  std::string error;
  auto cluster = RouterCluster::Start(options, &error);
  ASSERT_NE(cluster, nullptr) << error;
  for (int max_tokens : {1, 2, 8}) {
    SCOPED_TRACE(max_tokens);
    const HttpResult r = Http(cluster->http_address(), "POST", "/v1/completions",
                              R"({"prompt":[115,392,238,490,151,477,14,216],"temperature":0,)"
                              R"("stream":true,"max_tokens":)" +
                                  std::to_string(max_tokens) + "}");
    ASSERT_EQ(r.status, 200) << r.head;
    EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << r.body;
  }
}

}  // namespace
}  // namespace tessera::testing

namespace tessera::testing {
namespace {

// A worker that dies after the first streamed tokens: the stream ends with an
// SSE error event (what the SDK raises as APIError), then [DONE]; nothing is
// retried, since tokens already reached the client.
TEST(OpenAiHttpFailureTest, AWorkerLostMidStreamEndsTheStreamWithAnErrorEvent) {
  RouterClusterOptions options;
  options.replicas = 1;
  // Slow enough on one CPU thread that the kill lands mid-stream.
  options.worker_args = {"--dummy", "smollm2-135m", "--device",    "cpu", "--threads",
                         "1",       "--dtype",      "float32",     "--num-kv-blocks", "256",
                         "--log-level", WorkerLogLevel()};
  std::string error;
  auto cluster = RouterCluster::Start(options, &error);
  ASSERT_NE(cluster, nullptr) << error;
  const int fd = Connect(cluster->http_address());
  ASSERT_GE(fd, 0);
  const std::string body =
      R"({"prompt":[5,6,7,8,9,10,11,12],"max_tokens":400,"ignore_eos":true,"stream":true,)"
      R"("logprobs":0})";
  SendAll(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              "Content-Type: application/json\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body);
  std::string got = Receive(fd, milliseconds(60000), "data: {");
  ASSERT_NE(got.find("200"), std::string::npos) << got;
  ASSERT_NE(got.find("data: {"), std::string::npos) << got;
  cluster->KillReplica(0);
  got += Receive(fd, milliseconds(60000));  // until the router ends the response
  close(fd);
  const size_t error_event = got.find("data: {\"error\"");
  ASSERT_NE(error_event, std::string::npos) << got.substr(0, 2000);
  EXPECT_NE(got.find("failed after", error_event), std::string::npos)
      << got.substr(error_event, 600);
  EXPECT_NE(got.find("data: [DONE]", error_event), std::string::npos);
  EXPECT_EQ(got.find("\"finish_reason\":\"length\""), std::string::npos)
      << "the stream must not look complete";
}

}  // namespace
}  // namespace tessera::testing
