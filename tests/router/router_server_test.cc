// RouterServer start-up checks (admin host without token, bad options), the
// auth helpers, and the tessera-router binary: flags with dashes, the port
// file, health on both ports, relaying to a fake worker, and SIGTERM (exit 0
// once in-flight streams finished or --shutdown-timeout passed).
#include <signal.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/auth.h"
#include "tests/integration/process.h"
#include "tests/router/service_test_util.h"

namespace tessera::router::testing {
namespace {

using ::testing::HasSubstr;

TEST(AuthTest, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("Bearer abc", "Bearer abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("Bearer abc", "Bearer abd"));
  EXPECT_FALSE(ConstantTimeEquals("Bearer abc", "Bearer ab"));
  EXPECT_FALSE(ConstantTimeEquals("Bearer ab", "Bearer abc"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_FALSE(ConstantTimeEquals(absl::string_view("a\0b", 3), absl::string_view("a\0c", 3)));
}

TEST(AuthTest, LoopbackHosts) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]"}) {
    EXPECT_TRUE(IsLoopbackHost(h)) << h;
  }
  for (const char* h : {"0.0.0.0", "::", "[::]", "10.0.0.1", "192.168.1.1", "example.com", ""}) {
    EXPECT_FALSE(IsLoopbackHost(h)) << h;
  }
}

TEST(RouterServerTest, RefusesAnOpenAdminPortWithoutAToken) {
  RouterServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.admin_host = "0.0.0.0";
  o.admin_port = 0;
  absl::StatusOr<std::unique_ptr<RouterServer>> r = RouterServer::Start(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("--admin-token"));

  o.admin_token = "secret";
  r = RouterServer::Start(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT((*r)->port(), 0);
  EXPECT_GT((*r)->admin_port(), 0);
  EXPECT_NE((*r)->port(), (*r)->admin_port());
}

TEST(RouterServerTest, BadOptionsAreRefusedWithTheFlagName) {
  auto start = [](const std::function<void(RouterServerOptions&)>& change) {
    RouterServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.admin_port = 0;
    change(o);
    return RouterServer::Start(o).status();
  };
  absl::Status s = start([](RouterServerOptions& o) { o.policy = "fastest"; });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("round_robin"));
  s = start([](RouterServerOptions& o) { o.workers = {"not-an-address"}; });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("not-an-address"));
  s = start([](RouterServerOptions& o) { o.relay.max_attempts = 0; });
  EXPECT_THAT(s.message(), HasSubstr("--max-attempts"));
  s = start([](RouterServerOptions& o) { o.admission.max_concurrent = 0; });
  EXPECT_THAT(s.message(), HasSubstr("--max-concurrent-requests"));
  s = start([](RouterServerOptions& o) { o.admission.queue_timeout = absl::ZeroDuration(); });
  EXPECT_THAT(s.message(), HasSubstr("--queue-timeout"));
  s = start([](RouterServerOptions& o) { o.workers = {"dns:///no-port"}; });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST(RouterServerTest, DnsWorkersComeFromTheResolver) {
  FakeWorker fw(FakeWorkerOptions{.worker_id = "dns-w"});
  RouterServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.admin_port = 0;
  o.pool.health_interval = absl::Milliseconds(50);
  o.workers = {"dns:///workers.example:50051"};
  std::string resolved_host;
  o.resolver = [&](const DnsTarget& target) -> absl::StatusOr<std::vector<std::string>> {
    resolved_host = target.host;
    return std::vector<std::string>{fw.address()};
  };
  absl::StatusOr<std::unique_ptr<RouterServer>> r = RouterServer::Start(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(resolved_host, "workers.example");
  ASSERT_TRUE(Eventually([&] { return (*r)->pool().Get("dns-w").has_value(); }));
  EXPECT_EQ((*r)->pool().Get("dns-w")->source(), v1::WorkerInfo::SOURCE_DNS);
}

// ---- the binary --------------------------------------------------------------

std::string RouterBinary() { return std::string(TESSERA_BINARY_DIR) + "/router/tessera-router"; }

bool ReadPorts(const std::string& path, int* client, int* admin) {
  std::ifstream in(path);
  return static_cast<bool>(in >> *client >> *admin) && *client > 0 && *admin > 0;
}

class RouterBinaryTest : public ::testing::Test {
 protected:
  // Starts tessera-router with `args` (plus free ports and a port file) and
  // waits for the port file.
  void StartRouter(std::vector<std::string> args, std::vector<std::string> env = {}) {
    dir_ = tessera::testing::MakeTempDir("router_binary_test");
    const std::string port_file = dir_ + "/ports";
    std::vector<std::string> argv = {RouterBinary(),
                                     "--host",
                                     "127.0.0.1",
                                     "--port",
                                     "0",
                                     "--admin-port",
                                     "0",
                                     "--port-file",
                                     port_file,
                                     "--health-interval-ms",
                                     "50"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string error;
    process_ = tessera::testing::Process::Spawn(argv, dir_ + "/router.log", &error, env);
    ASSERT_NE(process_, nullptr) << error;
    ASSERT_TRUE(tessera::testing::PollUntil(std::chrono::seconds(20), [&] {
      return ReadPorts(port_file, &port_, &admin_port_) || !process_->Running();
    }));
    ASSERT_TRUE(process_->Running()) << process_->LogTail();
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
    admin_channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", admin_port_),
                                         grpc::InsecureChannelCredentials());
  }

  std::string dir_;
  std::unique_ptr<tessera::testing::Process> process_;
  int port_ = 0;
  int admin_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<grpc::Channel> admin_channel_;
};

TEST_F(RouterBinaryTest, ServesRelaysAndExitsZeroOnSigterm) {
  FakeWorker fw(FakeWorkerOptions{.worker_id = "bin-w"});
  // The admin token from the environment; flags written with dashes.
  StartRouter({"--workers", fw.address(), "--max-attempts", "2", "--log-level", "warn"},
              {"TESSERA_ADMIN_TOKEN=tok"});
  EXPECT_EQ(CheckHealth(channel_), 1) << process_->LogTail();
  EXPECT_EQ(CheckHealth(channel_, "tessera.v1.Llm"), 1);
  EXPECT_EQ(CheckHealth(admin_channel_, "tessera.v1.Admin"), 1);

  auto admin = v1::Admin::NewStub(admin_channel_);
  {
    grpc::ClientContext no_token;
    v1::ListWorkersResponse list;
    EXPECT_EQ(admin->ListWorkers(&no_token, v1::ListWorkersRequest(), &list).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  ASSERT_TRUE(Eventually([&] {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer tok");
    v1::ListWorkersResponse list;
    return admin->ListWorkers(&ctx, v1::ListWorkersRequest(), &list).ok() &&
           list.workers_size() == 1 && list.workers(0).state() == v1::WorkerInfo::STATE_HEALTHY;
  }));
  auto llm = v1::Llm::NewStub(channel_);
  ASSERT_TRUE(Eventually([&] {
    grpc::ClientContext ctx;
    v1::ListModelsResponse models;
    return llm->ListModels(&ctx, v1::ListModelsRequest(), &models).ok();
  }));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(10)));
  auto reader = llm->Generate(&ctx, IdsRequest({1, 2, 3}));
  Stream s;
  v1::GenerateResponse m;
  while (reader->Read(&m)) s.messages.push_back(m);
  s.status = reader->Finish();
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.tokens(), (std::vector<int32_t>{100, 101, 102, 103}));

  process_->Signal(SIGTERM);
  std::optional<int> code = process_->WaitExit(std::chrono::seconds(20));
  ASSERT_TRUE(code.has_value()) << process_->LogTail();
  EXPECT_EQ(*code, 0) << process_->LogTail();
}

TEST_F(RouterBinaryTest, SigtermEndsAHangingStreamAfterTheShutdownTimeout) {
  FakeWorker fw(FakeWorkerOptions{.worker_id = "bin-w"});
  GenerateScript hang;
  hang.tokens = 1;
  hang.hang = true;
  fw.SetGenerateScript(hang);
  StartRouter({"--workers", fw.address(), "--shutdown-timeout", "0.5", "--log-level", "warn"});
  auto llm = v1::Llm::NewStub(channel_);
  ASSERT_TRUE(Eventually([&] {
    grpc::ClientContext ctx;
    v1::ListModelsResponse models;
    return llm->ListModels(&ctx, v1::ListModelsRequest(), &models).ok();
  }));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(30)));
  auto reader = llm->Generate(&ctx, IdsRequest({1, 2, 3}));
  v1::GenerateResponse m;
  ASSERT_TRUE(reader->Read(&m));  // the stream is in flight
  const absl::Time signalled = absl::Now();
  process_->Signal(SIGTERM);
  while (reader->Read(&m)) {
  }
  EXPECT_FALSE(reader->Finish().ok());
  std::optional<int> code = process_->WaitExit(std::chrono::seconds(20));
  ASSERT_TRUE(code.has_value()) << process_->LogTail();
  EXPECT_EQ(*code, 0) << process_->LogTail();
  EXPECT_GE(absl::Now() - signalled, absl::Milliseconds(400));  // it waited for the stream
  EXPECT_TRUE(Eventually([&] { return fw.active_generates() == 0; }));
}

TEST_F(RouterBinaryTest, RefusesAnOpenAdminHostWithoutAToken) {
  dir_ = tessera::testing::MakeTempDir("router_binary_test");
  std::string error;
  process_ = tessera::testing::Process::Spawn(
      {RouterBinary(), "--port", "0", "--admin-port", "0", "--admin-host", "0.0.0.0"},
      dir_ + "/router.log", &error, {"TESSERA_ADMIN_TOKEN="});
  ASSERT_NE(process_, nullptr) << error;
  std::optional<int> code = process_->WaitExit(std::chrono::seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_THAT(process_->LogTail(), HasSubstr("--admin-token"));
}

}  // namespace
}  // namespace tessera::router::testing
