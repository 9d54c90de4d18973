// mTLS between tessera-router and its workers (--tls-cert/--tls-key/--tls-ca)
// on loopback, with certificates the test makes (openssl CLI): the router
// reaches a TLS worker (health polls, Generate relayed to a client), a worker
// registers over TLS with its certificate; a client without a certificate is
// refused by the worker's services and by Registry (health still answers),
// one with a certificate from another CA, or without TLS, cannot connect;
// the `tessera` CLI (--tls-ca) and tessera-bench --service llm (--tls-*)
// reach the TLS router.
#include "gtest/gtest.h"
#include "tessera/v1/admin.grpc.pb.h"
#include "tests/integration/cluster_process.h"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;
using tessera::v1::WorkerInfo;

class ClusterTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("tessera_cluster_tls");
    ASSERT_FALSE(dir_.empty());
    std::string error;
    ASSERT_TRUE(MakeTestCertificates(dir_, &certs_, &error)) << error;
    ca_ = ReadTestFile(certs_.ca);
    cert_ = ReadTestFile(certs_.cert);
    key_ = ReadTestFile(certs_.key);
    tls_flags_ = {"--tls-cert", certs_.cert, "--tls-key", certs_.key, "--tls-ca", certs_.ca};
  }
  void TearDown() override {
    if (!::testing::Test::HasFailure()) return;
    for (const auto& [name, p] : processes_) {
      std::fprintf(stderr, "--- %s ---\n%s\n", name.c_str(), p->LogTail().c_str());
    }
  }

  // Starts a process; its ports once its port file has `count` of them.
  std::vector<int> Start(const std::string& name, const std::vector<std::string>& argv,
                         size_t count) {
    std::string error;
    const std::string log = dir_ + "/" + name + ".log";
    processes_.emplace_back(name, Process::Spawn(argv, log, &error, {"TESSERA_CLUSTER_TOKEN="}));
    Process* p = processes_.back().second.get();
    EXPECT_NE(p, nullptr) << error;
    if (p == nullptr) return {};
    const std::optional<std::vector<int>> ports =
        WaitPortFile(dir_ + "/" + name + ".port", count, *p, milliseconds(60000));
    EXPECT_TRUE(ports.has_value()) << name << " did not start:\n" << p->LogTail();
    return ports.value_or(std::vector<int>{});
  }
  std::vector<int> StartWorker(const std::string& name, std::vector<std::string> args) {
    args.insert(args.end(), {"--worker-id", name});
    return Start(name, TinyWorkerCommand("127.0.0.1", dir_ + "/" + name + ".port", args), 1);
  }
  Process& process(const std::string& name) {
    for (auto& [n, p] : processes_) {
      if (n == name) return *p;
    }
    std::abort();
  }

  std::string dir_;
  TestCertificates certs_;
  std::string ca_, cert_, key_;
  std::vector<std::string> tls_flags_;
  std::vector<std::pair<std::string, std::unique_ptr<Process>>> processes_;
};

TEST_F(ClusterTlsTest, RouterAndWorkersUseMutualTls) {
  const std::vector<int> w = StartWorker("w0", tls_flags_);
  ASSERT_EQ(w.size(), 1u);
  const std::string worker = "127.0.0.1:" + std::to_string(w[0]);
  std::vector<std::string> router_args = tls_flags_;
  router_args.insert(router_args.end(), {"--workers", worker});
  const std::vector<int> r = Start("router", RouterCommand(dir_ + "/router.port", router_args), 3);
  ASSERT_EQ(r.size(), 3u);
  const std::string client = "127.0.0.1:" + std::to_string(r[0]);
  auto admin = tessera::v1::Admin::NewStub(MakeTestChannel("127.0.0.1:" + std::to_string(r[1])));
  auto state_of = [&](const std::string& address) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    tessera::v1::ListWorkersResponse resp;
    if (!admin->ListWorkers(&ctx, {}, &resp).ok()) return WorkerInfo::STATE_UNSPECIFIED;
    for (const WorkerInfo& info : resp.workers()) {
      if (info.address() == address) return info.state();
    }
    return WorkerInfo::STATE_UNSPECIFIED;
  };
  // The router's polls reach the worker over mTLS.
  ASSERT_TRUE(PollUntil(milliseconds(20000), [&] {
    return state_of(worker) == WorkerInfo::STATE_HEALTHY;
  })) << "the TLS worker never turned HEALTHY at the router";

  // A client of the router: TLS with the CA, no certificate; the request is
  // relayed to the worker over mTLS.
  auto llm = tessera::v1::Llm::NewStub(ClusterTestChannel(client, "", ca_));
  const CallRecord call = RunLlmGenerate(*llm, GreedyLlmRequest({1, 300, 301, 302}, 6, "tls-1"),
                                         {.deadline = milliseconds(30000)});
  ExpectCompleteCall(call, 4, 6, "through the TLS router");
  EXPECT_EQ(call.worker_id, "w0");

  // The `tessera` CLI through the TLS router: with --tls-ca (and a client
  // certificate, or none), as the TLS client above; without, it cannot connect.
  for (const std::vector<std::string>& tls :
       {std::vector<std::string>{"--tls-ca", certs_.ca},
        std::vector<std::string>{"--tls-ca", certs_.ca, "--tls-cert", certs_.cert, "--tls-key",
                                 certs_.key}}) {
    std::vector<std::string> args = {"--endpoint",   client, "generate",  "Hello",
                                     "--max-tokens", "4",    "--timeout", "30"};
    args.insert(args.end(), tls.begin(), tls.end());
    const CliResult cli = RunCliIn(dir_, args);
    EXPECT_EQ(cli.exit_code, 0) << cli.Describe();
    EXPECT_NE(cli.err.find("completion_tokens: 4, cached_prompt_tokens"), std::string::npos)
        << cli.Describe();
  }
  const CliResult plain_cli =
      RunCliIn(dir_, {"--endpoint", client, "generate", "Hello", "--timeout", "3"});
  EXPECT_EQ(plain_cli.exit_code, 5) << plain_cli.Describe();  // unreachable
  // tessera-bench --service llm with --tls-*: every request completes (exit 0).
  {
    std::vector<std::string> bench = {std::string(TESSERA_BINARY_DIR) + "/bench/tessera-bench",
                                      "--target",
                                      client,
                                      "--service",
                                      "llm",
                                      "--requests",
                                      "4",
                                      "--concurrency",
                                      "2",
                                      "--prompt-len",
                                      "4",
                                      "--max-tokens",
                                      "4",
                                      "--vocab-size",
                                      "256",
                                      "--timeout",
                                      "60"};
    bench.insert(bench.end(), tls_flags_.begin(), tls_flags_.end());
    std::string error;
    std::unique_ptr<Process> p =
        Process::Spawn(bench, dir_ + "/bench.log", &error, {"TESSERA_CLUSTER_TOKEN="});
    ASSERT_NE(p, nullptr) << error;
    EXPECT_EQ(p->WaitExit(milliseconds(90000)), std::optional<int>(0)) << p->LogTail();
  }

  // The worker, directly: with the certificate everything works...
  auto with_cert = tessera::v1::Worker::NewStub(ClusterTestChannel(worker, "", ca_, cert_, key_));
  EXPECT_TRUE(GetLoad(*with_cert).has_value());
  // ...over TLS without one, every service but health refuses...
  auto no_cert_channel = ClusterTestChannel(worker, "", ca_);
  auto no_cert = tessera::v1::Worker::NewStub(no_cert_channel);
  grpc::Status s;
  EXPECT_FALSE(GetLoad(*no_cert, milliseconds(5000), &s).has_value());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  EXPECT_NE(s.error_message().find("mTLS"), std::string::npos) << Describe(s);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    tessera::v1::DrainResponse resp;
    s = no_cert->Drain(&ctx, {}, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  }
  const StreamResult direct = RunGenerate(*no_cert, GreedyRequest({1, 2, 3}, 4));
  EXPECT_EQ(direct.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << Describe(direct.status);
  EXPECT_EQ(CheckHealth(*no_cert_channel, milliseconds(5000)), HealthState::kServing);
  // ...and a certificate from another CA, or plaintext, cannot even connect.
  auto rogue = tessera::v1::Worker::NewStub(ClusterTestChannel(
      worker, "", ca_, ReadTestFile(certs_.rogue_cert), ReadTestFile(certs_.rogue_key)));
  EXPECT_FALSE(GetLoad(*rogue, milliseconds(3000), &s).has_value());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(s);
  auto plain = tessera::v1::Worker::NewStub(MakeTestChannel(worker));
  EXPECT_FALSE(GetLoad(*plain, milliseconds(3000), &s).has_value());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(s);

  // Registry over TLS without a client certificate: refused.
  {
    auto registry = tessera::v1::Registry::NewStub(ClusterTestChannel(client, "", ca_));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    tessera::v1::RegisterWorkerRequest req;
    req.set_address("127.0.0.1:1");
    req.set_worker_id("intruder");
    tessera::v1::RegisterWorkerResponse resp;
    s = registry->RegisterWorker(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  }
  // A worker registering with its certificate gets in and serves over mTLS.
  std::vector<std::string> reg_args = tls_flags_;
  reg_args.insert(reg_args.end(), {"--router", client, "--heartbeat-interval-ms", "200"});
  const std::vector<int> w1 = StartWorker("w1", reg_args);
  ASSERT_EQ(w1.size(), 1u);
  const std::string registered = "127.0.0.1:" + std::to_string(w1[0]);
  EXPECT_TRUE(PollUntil(milliseconds(20000), [&] {
    return state_of(registered) == WorkerInfo::STATE_HEALTHY;
  })) << "the worker registering over mTLS never turned HEALTHY";
  // One without TLS cannot register (its first failure is logged).
  const std::vector<int> w2 =
      StartWorker("w2", {"--router", client, "--heartbeat-interval-ms", "200"});
  ASSERT_EQ(w2.size(), 1u);
  EXPECT_TRUE(PollUntil(milliseconds(20000), [&] {
    return process("w2").LogTail(20000).find("registering with router") != std::string::npos;
  })) << process("w2").LogTail();
  EXPECT_EQ(state_of("127.0.0.1:" + std::to_string(w2[0])), WorkerInfo::STATE_UNSPECIFIED);
}

}  // namespace
}  // namespace tessera::testing
