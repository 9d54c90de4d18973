// A tessera-worker replica for integration tests: `mpirun -np N
// tessera-worker --host 127.0.0.1 --port 0 --port-file F ...` on loopback,
// started and waited on until its leader reports grpc.health.v1 SERVING,
// with a gRPC channel and Worker stub to it. The destructor kills the whole
// job (mpirun's process group, then any process still carrying the job's
// unique marker), so nothing outlives a test, even a failing one.
//
// Also: a health check over the standard grpc.health.v1 service (through the
// generic stub; the health protos are not installed with Debian's gRPC), and
// small helpers for GetLoad.
//
// Not thread-safe, except stub() and channel(), which may be used from any
// thread (gRPC stubs are thread-safe).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "tessera/v1/worker.grpc.pb.h"
#include "tests/integration/process.h"

namespace tessera::testing {

struct WorkerClusterOptions {
  int ranks = 1;
  // Flags after the fixed ones (--host/--port/--port-file), e.g.
  // {"--model", dir, "--num-kv-blocks", "256", "--threads", "1"}.
  std::vector<std::string> worker_args;
  // Until the port file appears and health turns SERVING.
  std::chrono::milliseconds start_timeout{60000};
};

enum class HealthState {
  kServing = 1,
  kNotServing = 2,
  kUnknown = 3,      // answered, but neither SERVING nor NOT_SERVING
  kUnreachable = 4,  // the RPC failed (connection refused, deadline, ...)
};
const char* HealthStateName(HealthState s);

// One grpc.health.v1.Health/Check for the server-wide status ("").
HealthState CheckHealth(grpc::Channel& channel, std::chrono::milliseconds timeout,
                        grpc::Status* rpc_status = nullptr);

// Worker.GetLoad with a deadline; nullopt (and *rpc_status) when it fails.
std::optional<tessera::v1::LoadReport> GetLoad(
    tessera::v1::Worker::Stub& stub,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000),
    grpc::Status* rpc_status = nullptr);

// A channel to `address` that reconnects quickly (tests kill servers).
std::shared_ptr<grpc::Channel> MakeTestChannel(const std::string& address);

// `mpirun ... -np RANKS tessera-worker --host HOST --port 0 --port-file FILE`:
// the build's mpirun (as root, oversubscribed, unbound, its transports on
// loopback only) and WorkerCluster::WorkerBinary(); the caller appends the
// worker's other flags.
std::vector<std::string> LoopbackWorkerCommand(int ranks, const std::string& host,
                                               const std::string& port_file);

class WorkerCluster {
 public:
  // <build>/worker/tessera-worker, the binary under test
  // ($TESSERA_WORKER_BINARY overrides it).
  static std::string WorkerBinary();
  // The mpirun of the build (MPIEXEC_EXECUTABLE).
  static std::string Mpirun();

  // Starts the job and waits for SERVING. On failure returns nullptr and sets
  // *error (with the job's log tail); the job is killed.
  static std::unique_ptr<WorkerCluster> Start(const WorkerClusterOptions& options,
                                              std::string* error);

  WorkerCluster(const WorkerCluster&) = delete;
  WorkerCluster& operator=(const WorkerCluster&) = delete;
  ~WorkerCluster();

  // "127.0.0.1:PORT" of the leader.
  const std::string& address() const { return address_; }
  // The leader's /metrics port (started with --metrics-port), else 0.
  int metrics_port() const { return metrics_port_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  tessera::v1::Worker::Stub& stub() const { return *stub_; }
  // The mpirun process.
  Process& job() { return *job_; }
  // A string only this job's processes carry in their command line.
  const std::string& marker() const { return port_file_; }

  // The pids of the tessera-worker processes of `rank` (normally one; empty
  // when it is gone). Found through /proc: the marker in the command line
  // and OMPI_COMM_WORLD_RANK=rank in the environment.
  std::vector<pid_t> RankPids(int rank) const;
  // Every live process with the marker other than mpirun itself.
  std::vector<pid_t> WorkerPids() const;

  // Prints the job's log tail to stderr when the current test has failed
  // (the destructor does it too; shared clusters call it in TearDown).
  void PrintLogIfTestFailed() const;

  // The job's combined stdout/stderr, last `max_bytes`.
  std::string LogTail(size_t max_bytes = 6000) const { return job_->LogTail(max_bytes); }

 private:
  WorkerCluster() = default;

  std::string dir_;
  std::string port_file_;
  std::unique_ptr<Process> job_;
  std::string address_;
  int metrics_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tessera::v1::Worker::Stub> stub_;
};

}  // namespace tessera::testing
