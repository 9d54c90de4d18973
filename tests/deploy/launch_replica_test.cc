// deploy/launch-replica.sh end to end on this machine: a 2-rank stories260K
// replica launched by the script (loopback hostfile), found by tessera-router
// through dns:/// discovery (`--workers dns:///127.0.0.1:PORT`, re-resolved
// every second), answers llama2.c's greedy reference through the router;
// then SIGUSR1 to the script's process (mpirun after its exec, as the
// Kubernetes preStop hook sends it) drains the replica and it exits 0.
// Bounded waits throughout; everything started is killed at the end.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tessera/v1/admin.grpc.pb.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tests/integration/common.h"
#include "tests/integration/process.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"
#include "tests/integration/worker_cluster.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;

constexpr char kAdminToken[] = "deploy-test-token";

std::string LaunchScript() { return std::string(TESSERA_SOURCE_DIR) + "/deploy/launch-replica.sh"; }

// The router's workers (ListWorkers with the admin token); empty on error.
std::vector<v1::WorkerInfo> ListWorkers(v1::Admin::Stub& admin) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kAdminToken);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListWorkersResponse response;
  if (!admin.ListWorkers(&ctx, v1::ListWorkersRequest(), &response).ok()) return {};
  return {response.workers().begin(), response.workers().end()};
}

std::string DescribeWorkers(const std::vector<v1::WorkerInfo>& workers) {
  std::string out;
  for (const v1::WorkerInfo& w : workers) {
    out += w.id() + " " + w.address() + " " + v1::WorkerInfo::State_Name(w.state()) + " " +
           v1::WorkerInfo::Source_Name(w.source()) + " " + w.last_error() + "\n";
  }
  return out.empty() ? "(none)" : out;
}

class LaunchReplicaTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      if (router_) std::fprintf(stderr, "--- router log ---\n%s\n", router_->LogTail().c_str());
      if (job_)
        std::fprintf(stderr, "--- launch-replica.sh log ---\n%s\n", job_->LogTail().c_str());
    }
    router_.reset();  // SIGTERM, then SIGKILL to the group
    job_.reset();
    if (!worker_port_file_.empty()) KillProcesses(worker_port_file_);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::string worker_port_file_;
  std::unique_ptr<Process> job_;
  std::unique_ptr<Process> router_;
};

TEST_F(LaunchReplicaTest, TwoRankReplicaAnswersThroughTheRouterThenDrainsOnSigusr1) {
  TESSERA_REQUIRE_STORIES();
  for (const std::string& binary : {WorkerCluster::WorkerBinary(), RouterCluster::RouterBinary()}) {
    ASSERT_TRUE(std::filesystem::exists(binary)) << binary << " does not exist: build it first";
  }
  dir_ = MakeTempDir("tessera_deploy");
  ASSERT_FALSE(dir_.empty());
  const std::string hostfile = dir_ + "/hostfile";
  std::ofstream(hostfile) << "# one node, two GPUs' worth of ranks\nlocalhost slots=2\n";
  worker_port_file_ = dir_ + "/worker.port";

  // ---- the replica, through the script ----
  std::vector<std::string> argv = {
      "/bin/bash", LaunchScript(), "--hostfile", hostfile, "--np", "2", "--worker",
      WorkerCluster::WorkerBinary(), "--mpirun", TESSERA_MPIEXEC,
      // No --mpirun-args: the script's own transports for one machine
      // (shared memory, loopback) carry the replica.
      "--", "--host", "127.0.0.1", "--port", "0", "--port-file", worker_port_file_};
  for (const std::string& a : StoriesWorkerArgs()) argv.push_back(a);
  std::string error;
  job_ = Process::Spawn(argv, dir_ + "/replica.log", &error);
  ASSERT_NE(job_, nullptr) << error;
  const std::optional<std::vector<int>> worker_port =
      WaitPortFile(worker_port_file_, 1, *job_, milliseconds(60000));
  ASSERT_TRUE(worker_port.has_value())
      << "no port file from the replica (it exited first, or 60 s passed)";
  const std::string worker_address = "127.0.0.1:" + std::to_string((*worker_port)[0]);
  EXPECT_EQ(FindProcesses(worker_port_file_).size(), 3u)
      << "mpirun (the script's own process after exec) and two ranks";

  // ---- the router, finding it through dns:/// ----
  const std::string router_ports = dir_ + "/router.port";
  std::vector<std::string> router_argv = LoopbackRouterCommand(router_ports);
  router_argv.insert(
      router_argv.end(),
      {"--http-port", "-1",  // after the loopback command's: the last one wins
       "--admin-token", kAdminToken, "--workers",
       "dns:///127.0.0.1:" + std::to_string((*worker_port)[0]), "--dns-refresh-seconds", "1",
       "--health-interval-ms", "200", "--log-level", RouterLogLevel()});
  router_ = Process::Spawn(router_argv, dir_ + "/router.log", &error);
  ASSERT_NE(router_, nullptr) << error;
  const std::optional<std::vector<int>> ports =
      WaitPortFile(router_ports, 2, *router_, milliseconds(30000));
  ASSERT_TRUE(ports.has_value())
      << "no port file from the router (it exited first, or 30 s passed)";
  auto llm = v1::Llm::NewStub(MakeTestChannel("127.0.0.1:" + std::to_string((*ports)[0])));
  auto admin = v1::Admin::NewStub(MakeTestChannel("127.0.0.1:" + std::to_string((*ports)[1])));
  std::vector<v1::WorkerInfo> workers;
  ASSERT_TRUE(PollUntil(milliseconds(30000),
                        [&] {
                          workers = ListWorkers(*admin);
                          for (const v1::WorkerInfo& w : workers) {
                            if (w.address() == worker_address &&
                                w.state() == v1::WorkerInfo::STATE_HEALTHY)
                              return true;
                          }
                          return !router_->Running();
                        }))
      << "the router never had " << worker_address << " HEALTHY; ListWorkers:\n"
      << DescribeWorkers(workers);
  ASSERT_EQ(workers.size(), 1u) << DescribeWorkers(workers);
  EXPECT_EQ(workers[0].source(), v1::WorkerInfo::SOURCE_DNS);

  // ---- the greedy reference, through the router ----
  const std::vector<GreedyReference> refs = LoadGreedyReference();
  ASSERT_EQ(refs.size(), 3u);
  for (size_t i = 0; i < refs.size(); ++i) {
    const GreedyReference& ref = refs[i];
    const int max_tokens = static_cast<int>(ref.generated.size());
    CallOptions options;
    options.deadline = milliseconds(60000);
    const CallRecord call = RunLlmGenerate(*llm, GreedyRequest(ref.prompt, max_tokens), options);
    ASSERT_TRUE(call.ok()) << Describe(call.status);
    EXPECT_TRUE(call.finished);
    EXPECT_EQ(call.messages_after_finish, 0);
    EXPECT_EQ(call.tokens.size(), static_cast<size_t>(max_tokens));
    EXPECT_FALSE(call.worker_id.empty());
    StreamResult as_stream;
    as_stream.tokens = call.tokens;
    ExpectMatchesReference(as_stream, ref, "reference prompt " + std::to_string(i));
  }

  // ---- drain: SIGUSR1 to the script's process (mpirun), as preStop does ----
  job_->Signal(SIGUSR1);
  const std::optional<int> code = job_->WaitExit(milliseconds(30000));
  ASSERT_TRUE(code.has_value()) << "the replica did not exit within 30 s of SIGUSR1";
  EXPECT_EQ(*code, 0) << "a drained replica exits 0";
  EXPECT_TRUE(PollUntil(milliseconds(3000), [&] {
    return FindProcesses(worker_port_file_).empty();
  })) << "worker processes left after the job exited";
}

}  // namespace
}  // namespace tessera::testing
