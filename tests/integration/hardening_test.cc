// Hardening of the binaries against squatters and careless operators (issue
// #16), end to end:
//   - a client that takes the next 40 request ids it can guess, and one that
//     reuses another client's id, make no other client's request fail (the
//     router gives every request its own random id);
//   - a second tessera-worker (or tessera-router) on a port in use exits
//     non-zero naming the port (no SO_REUSEPORT sharing);
//   - out-of-range ports are usage errors (exit 2);
//   - every binary's --help exits 0 and shows the flags with dashes;
//   - a request with invalid UTF-8 in a string field sent straight to a
//     worker is INVALID_ARGUMENT saying so;
//   - the HTTP front end has the gRPC one's size limits (400, short message).
// Dummy `tiny` replicas: no model files needed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

std::vector<std::string> TinyWorkerArgs() {
  return {"--dummy",         "tiny", "--threads",   "1",
          "--num-kv-blocks", "2048", "--log-level", WorkerLogLevel()};
}

tessera::v1::GenerateRequest Request(const std::string& id, int max_tokens) {
  tessera::v1::GenerateRequest r;
  r.set_request_id(id);
  for (int32_t t : {1, 2, 3}) r.mutable_token_ids()->add_ids(t);
  r.mutable_sampling()->set_max_tokens(max_tokens);
  r.mutable_sampling()->set_temperature(0.0f);
  r.mutable_sampling()->set_ignore_eos(true);
  return r;
}

// The `count` ids after `seen`, as an attacker would guess them: the tail
// after the last '-' incremented (as a decimal counter, or as hex).
std::vector<std::string> NextIds(const std::string& seen, int count) {
  const size_t dash = seen.rfind('-');
  const std::string head = seen.substr(0, dash + 1);
  const std::string tail = seen.substr(dash + 1);
  std::vector<std::string> out;
  uint64_t n = 0;
  if (absl::SimpleAtoi(tail, &n)) {
    for (int i = 1; i <= count; ++i) out.push_back(absl::StrCat(head, n + i));
    return out;
  }
  const std::string low = tail.size() > 15 ? tail.substr(tail.size() - 15) : tail;
  const std::string high = tail.substr(0, tail.size() - low.size());
  EXPECT_TRUE(absl::SimpleHexAtoi(low, &n)) << seen;
  for (int i = 1; i <= count; ++i) {
    out.push_back(absl::StrCat(head, high, absl::Hex(n + i, absl::kZeroPad15)));
  }
  return out;
}

class HardeningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    RouterClusterOptions options;
    options.replicas = 1;
    options.worker_args = TinyWorkerArgs();
    cluster_ = RouterCluster::Start(options, &error);
    ASSERT_NE(cluster_, nullptr) << error;
  }
  void TearDown() override {
    if (cluster_) cluster_->PrintLogsIfTestFailed();
  }

  std::unique_ptr<RouterCluster> cluster_;
};

TEST_F(HardeningTest, SquattedRequestIdsMakeNoOtherClientsRequestFail) {
  auto& llm = cluster_->llm();
  // The attacker learns what an id looks like from its own request.
  std::string seen;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto reader = llm.Generate(&ctx, Request("", 2));
    tessera::v1::GenerateResponse m;
    while (reader->Read(&m)) seen = m.request_id();
    ASSERT_TRUE(reader->Finish().ok());
  }
  ASSERT_FALSE(seen.empty());
  std::vector<std::string> squatted = NextIds(seen, 40);
  squatted.push_back("victim-0");  // another client's own id

  // The attacker's requests are long and stay in flight (each has delivered
  // its first message) while the victims run; then they are cancelled.
  absl::Notification victims_done;
  std::atomic<int> attackers_started{0};
  std::vector<grpc::ClientContext> attacker_ctx(squatted.size());
  std::vector<std::thread> attackers;
  for (size_t i = 0; i < squatted.size(); ++i) {
    attackers.emplace_back([&, i] {
      grpc::ClientContext& ctx = attacker_ctx[i];
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      auto reader = llm.Generate(&ctx, Request(squatted[i], 1800));
      tessera::v1::GenerateResponse m;
      if (reader->Read(&m)) attackers_started.fetch_add(1);
      victims_done.WaitForNotificationWithTimeout(absl::Seconds(60));
      ctx.TryCancel();
      while (reader->Read(&m)) {
      }
      reader->Finish();
    });
  }
  ASSERT_TRUE(
      PollUntil(milliseconds(30000),
                [&] { return attackers_started.load() == static_cast<int>(squatted.size()); }))
      << attackers_started.load() << " of " << squatted.size() << " attacker requests started";

  constexpr int kVictims = 10;
  std::vector<grpc::Status> statuses(kVictims);
  std::vector<std::string> labels(kVictims);
  std::vector<std::thread> victims;
  for (int v = 0; v < kVictims; ++v) {
    victims.emplace_back([&, v] {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      auto reader = llm.Generate(&ctx, Request(v == 0 ? "victim-0" : "", 8));
      tessera::v1::GenerateResponse m;
      while (reader->Read(&m)) labels[v] = m.request_id();
      statuses[v] = reader->Finish();
    });
  }
  for (std::thread& t : victims) t.join();
  victims_done.Notify();
  for (std::thread& t : attackers) t.join();

  for (int v = 0; v < kVictims; ++v) {
    EXPECT_TRUE(statuses[v].ok()) << "victim " << v << ": " << Describe(statuses[v]);
  }
  EXPECT_EQ(labels[0], "victim-0") << "a client sees its own id";
}

// One POST on its own connection to the router's HTTP API; the whole
// response (status line, headers, body).
std::string HttpPost(const std::string& address, const std::string& path, const std::string& body) {
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return "";
  }
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string request = absl::StrCat(
      "POST ", path, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
      "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
  for (size_t off = 0; off < request.size();) {
    const ssize_t n = send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string out;
  char buf[8192];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

TEST_F(HardeningTest, TheHttpApiHasTheSameSizeLimits) {
  const std::string big(1 << 20, 'q');
  for (const std::string& field : {std::string("request_id"), std::string("model")}) {
    SCOPED_TRACE(field);
    const std::string response = HttpPost(
        cluster_->http_address(), "/v1/completions",
        absl::StrCat(R"({"prompt": "hi", "max_tokens": 2, ")", field, R"(": ")", big, R"("})"));
    EXPECT_EQ(response.substr(0, 12), "HTTP/1.1 400") << response.substr(0, 300);
    EXPECT_THAT(response, HasSubstr(absl::StrCat(field, ": 1048576 bytes, more than the limit")));
    EXPECT_LT(response.size(), 2000u) << "the error quotes the value";
  }
}

// The worker's port is taken: a second worker (and a router) asked for it
// exit non-zero and say which port.
TEST_F(HardeningTest, ASecondServerOnAUsedPortExitsNonZero) {
  const std::string address = cluster_->worker_address(0);
  const std::string port = address.substr(address.rfind(':') + 1);
  const std::string dir = MakeTempDir("tessera_hardening");
  std::string error;
  std::vector<std::string> argv = {WorkerCluster::Mpirun(),
                                   "--allow-run-as-root",
                                   "--oversubscribe",
                                   "--bind-to",
                                   "none",
                                   "--mca",
                                   "btl",
                                   "self,vader",
                                   "--mca",
                                   "oob_tcp_if_include",
                                   "lo",
                                   "-np",
                                   "1",
                                   WorkerCluster::WorkerBinary(),
                                   "--host",
                                   "127.0.0.1",
                                   "--port",
                                   port};
  for (const std::string& a : TinyWorkerArgs()) argv.push_back(a);
  std::unique_ptr<Process> second = Process::Spawn(argv, dir + "/worker.log", &error);
  ASSERT_NE(second, nullptr) << error;
  const std::optional<int> code = second->WaitExit(milliseconds(60000));
  ASSERT_TRUE(code.has_value()) << "the second worker is still running:\n" << second->LogTail();
  EXPECT_NE(*code, 0) << second->LogTail();
  EXPECT_THAT(second->LogTail(), HasSubstr(absl::StrCat("127.0.0.1:", port)));
  // The first worker still answers, alone on its port.
  EXPECT_TRUE(GetLoad(cluster_->replica(0)->stub()).has_value());

  std::unique_ptr<Process> router =
      Process::Spawn({RouterCluster::RouterBinary(), "--host", "127.0.0.1", "--port", port,
                      "--admin-port", "0", "--http-port", "-1"},
                     dir + "/router.log", &error);
  ASSERT_NE(router, nullptr) << error;
  const std::optional<int> router_code = router->WaitExit(milliseconds(30000));
  ASSERT_TRUE(router_code.has_value()) << router->LogTail();
  EXPECT_NE(*router_code, 0) << router->LogTail();
  EXPECT_THAT(router->LogTail(), HasSubstr(absl::StrCat("127.0.0.1:", port)));
}

// A GenerateRequest whose `text` (field 3, a proto3 string) holds invalid
// UTF-8, sent as raw bytes straight to the worker: INVALID_ARGUMENT saying
// so (gRPC alone answers UNIMPLEMENTED with an empty message).
TEST_F(HardeningTest, InvalidUtf8AtTheWorkerIsInvalidArgument) {
  grpc::GenericStub stub(cluster_->replica(0)->channel());
  const std::string bytes = std::string("\x1a\x03") + "\xff\xfe\x41";  // text = ff fe 41
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, "/tessera.v1.Worker/Generate", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  call->Write(request, grpc::WriteOptions().set_last_message(), reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_FALSE(ok) << "no message is expected";
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_THAT(status.error_message(), HasSubstr("UTF-8"));
}

// Ports out of range and --help need no cluster.
struct Binary {
  std::string path;
  std::string flag;  // a multi-word flag its --help must show with dashes
};

std::vector<Binary> Binaries() {
  const std::string build = TESSERA_BINARY_DIR;
  return {{RouterCluster::RouterBinary(), "--admin-port"},
          {WorkerCluster::WorkerBinary(), "--max-num-seqs"},
          {build + "/worker/tessera-generate", "--max-tokens"},
          {build + "/bench/tessera-bench", "--http-threads"},
          {RouterCluster::CliBinary(), "--admin-token"}};
}

TEST(HardeningCliTest, HelpExitsZeroAndShowsFlagsWithDashes) {
  const std::string dir = MakeTempDir("tessera_help");
  for (const Binary& b : Binaries()) {
    SCOPED_TRACE(b.path);
    std::string error;
    const std::string log = dir + "/" + b.path.substr(b.path.rfind('/') + 1) + ".log";
    std::unique_ptr<Process> p = Process::Spawn({b.path, "--help"}, log, &error);
    ASSERT_NE(p, nullptr) << error;
    const std::optional<int> code = p->WaitExit(milliseconds(20000));
    ASSERT_TRUE(code.has_value());
    const std::string out = p->LogTail(1 << 20);
    EXPECT_EQ(*code, 0) << out;
    EXPECT_THAT(out, HasSubstr(b.flag));
    // No flag is shown as --snake_case.
    std::smatch m;
    EXPECT_FALSE(std::regex_search(out, m, std::regex("--[a-z0-9]+_[a-z0-9_]+")))
        << "shown with underscores: " << m.str();
  }
}

TEST(HardeningCliTest, OutOfRangePortsAreUsageErrors) {
  const std::string dir = MakeTempDir("tessera_ports");
  const std::vector<std::vector<std::string>> commands = {
      {RouterCluster::RouterBinary(), "--port", "99999", "--admin-port", "0", "--http-port", "-1"},
      {RouterCluster::RouterBinary(), "--port", "0", "--admin-port", "-2", "--http-port", "-1"},
      {RouterCluster::RouterBinary(), "--port", "0", "--admin-port", "0", "--http-port", "70000"},
      {WorkerCluster::WorkerBinary(), "--dummy", "tiny", "--port", "99999"},
      {WorkerCluster::WorkerBinary(), "--dummy", "tiny", "--port", "0", "--metrics-port", "-2"}};
  int i = 0;
  for (const std::vector<std::string>& argv : commands) {
    std::string command;
    for (const std::string& a : argv) command += a + " ";
    SCOPED_TRACE(command);
    std::string error;
    std::unique_ptr<Process> p = Process::Spawn(argv, absl::StrCat(dir, "/", i++, ".log"), &error);
    ASSERT_NE(p, nullptr) << error;
    const std::optional<int> code = p->WaitExit(milliseconds(20000));
    ASSERT_TRUE(code.has_value()) << p->LogTail();
    EXPECT_EQ(*code, 2) << p->LogTail();
    EXPECT_THAT(p->LogTail(), HasSubstr("port")) << p->LogTail();
  }
}

}  // namespace
}  // namespace tessera::testing
