#include "tests/integration/worker_cluster.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"

namespace tessera::testing {
namespace {

// The second number of the port file (the worker's --metrics-port), or 0.
int ReadSecondPort(const std::string& path) {
  std::ifstream in(path);
  int grpc_port = 0;
  int metrics_port = 0;
  if (!(in >> grpc_port >> metrics_port)) return 0;
  return metrics_port;
}

}  // namespace

const char* HealthStateName(HealthState s) {
  switch (s) {
    case HealthState::kServing:
      return "SERVING";
    case HealthState::kNotServing:
      return "NOT_SERVING";
    case HealthState::kUnknown:
      return "UNKNOWN";
    case HealthState::kUnreachable:
      return "UNREACHABLE";
  }
  return "?";
}

HealthState CheckHealth(grpc::Channel& channel, std::chrono::milliseconds timeout,
                        grpc::Status* rpc_status) {
  // HealthCheckRequest{service: ""} encodes to zero bytes; the response is
  // HealthCheckResponse{status = 1 (enum)}: tag 0x08, then a varint.
  grpc::GenericStub stub(channel.shared_from_this());
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Slice empty("", 0);
  grpc::ByteBuffer request(&empty, 1);
  auto call = stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (rpc_status != nullptr) *rpc_status = status;
  if (!status.ok()) return HealthState::kUnreachable;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return HealthState::kUnknown;
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  int value = 0;  // proto3 default: UNKNOWN
  if (bytes.size() >= 2 && bytes[0] == 0x08) value = static_cast<unsigned char>(bytes[1]);
  switch (value) {
    case 1:
      return HealthState::kServing;
    case 2:
      return HealthState::kNotServing;
    default:
      return HealthState::kUnknown;
  }
}

std::optional<tessera::v1::LoadReport> GetLoad(tessera::v1::Worker::Stub& stub,
                                               std::chrono::milliseconds timeout,
                                               grpc::Status* rpc_status) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  tessera::v1::LoadReport report;
  const grpc::Status status = stub.GetLoad(&ctx, tessera::v1::GetLoadRequest(), &report);
  if (rpc_status != nullptr) *rpc_status = status;
  if (!status.ok()) return std::nullopt;
  return report;
}

std::shared_ptr<grpc::Channel> MakeTestChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // Each test channel gets its own subchannel pool, so a dead server of an
  // earlier test is not shared state.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

std::string WorkerCluster::WorkerBinary() {
  if (const char* env = std::getenv("TESSERA_WORKER_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
  return std::string(TESSERA_BINARY_DIR) + "/worker/tessera-worker";
}

std::string WorkerCluster::Mpirun() { return TESSERA_MPIEXEC; }

std::vector<std::string> LoopbackWorkerCommand(int ranks, const std::string& host,
                                               const std::string& port_file) {
  return {WorkerCluster::Mpirun(),
          "--allow-run-as-root",
          "--oversubscribe",
          "--bind-to",
          "none",
          "--mca",
          "btl",
          "self,vader,tcp",
          "--mca",
          "btl_tcp_if_include",
          "lo",
          "--mca",
          "oob_tcp_if_include",
          "lo",
          "-np",
          std::to_string(ranks),
          WorkerCluster::WorkerBinary(),
          "--host",
          host,
          "--port",
          "0",
          "--port-file",
          port_file};
}

std::unique_ptr<WorkerCluster> WorkerCluster::Start(const WorkerClusterOptions& options,
                                                    std::string* error) {
  if (!std::filesystem::exists(WorkerBinary())) {
    *error = "worker binary " + WorkerBinary() +
             " does not exist: build the tessera-worker target first";
    return nullptr;
  }
  std::unique_ptr<WorkerCluster> c(new WorkerCluster());
  c->dir_ = MakeTempDir("tessera_integ");
  if (c->dir_.empty()) {
    *error = "cannot create a temp dir";
    return nullptr;
  }
  c->port_file_ = c->dir_ + "/port";
  std::vector<std::string> argv = LoopbackWorkerCommand(options.ranks, "127.0.0.1", c->port_file_);
  argv.insert(argv.end(), options.worker_args.begin(), options.worker_args.end());
  c->job_ = SpawnLogged(argv, c->dir_ + "/job.log", error);
  if (c->job_ == nullptr) return nullptr;

  const std::optional<std::vector<int>> port =
      WaitPortFile(c->port_file_, 1, *c->job_, options.start_timeout);
  if (!port) {
    const std::optional<int> code = c->job_->WaitExit(std::chrono::milliseconds(0));
    *error =
        (code
             ? "the job exited with code " + std::to_string(*code) + " before writing its port file"
             : "no port file after " + std::to_string(options.start_timeout.count()) + " ms") +
        "\n--- job log ---\n" + c->LogTail();
    return nullptr;
  }
  c->address_ = "127.0.0.1:" + std::to_string((*port)[0]);
  c->metrics_port_ = ReadSecondPort(c->port_file_);
  c->channel_ = MakeTestChannel(c->address_);
  c->stub_ = tessera::v1::Worker::NewStub(c->channel_);
  HealthState health = HealthState::kUnreachable;
  const bool serving = PollUntil(options.start_timeout, [&] {
    health = CheckHealth(*c->channel_, std::chrono::milliseconds(1000));
    return health == HealthState::kServing || !c->job_->Running();
  });
  if (!serving || health != HealthState::kServing) {
    *error = std::string("the worker at ") + c->address_ +
             " never turned SERVING (last: " + HealthStateName(health) + ")\n--- job log ---\n" +
             c->LogTail();
    return nullptr;
  }
  return c;
}

void WorkerCluster::PrintLogIfTestFailed() const {
  if (::testing::Test::HasFailure() && job_ != nullptr) {
    std::fprintf(stderr, "--- tessera-worker job log (%s) ---\n%s\n--- end of job log ---\n",
                 address_.c_str(), LogTail().c_str());
  }
}

WorkerCluster::~WorkerCluster() {
  PrintLogIfTestFailed();
  stub_.reset();
  channel_.reset();
  if (job_ != nullptr) job_->KillGroup();
  if (!port_file_.empty()) KillProcesses(port_file_);
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::vector<pid_t> WorkerCluster::RankPids(int rank) const {
  return FindProcesses(port_file_, "OMPI_COMM_WORLD_RANK=" + std::to_string(rank));
}

std::vector<pid_t> WorkerCluster::WorkerPids() const {
  std::vector<pid_t> pids;
  for (pid_t pid : FindProcesses(port_file_)) {
    if (pid != job_->pid()) pids.push_back(pid);
  }
  return pids;
}

}  // namespace tessera::testing
