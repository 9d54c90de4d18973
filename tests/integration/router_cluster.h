// A routed cluster for integration tests: N tessera-worker replicas (each a
// WorkerCluster: mpirun + ranks on loopback, --port 0, worker id "w<i>") and
// a tessera-router in front of them (--port 0 --admin-port 0 --port-file),
// started and waited on (bounded) until the router's ListWorkers shows every
// static replica HEALTHY. It exposes the router's stubs (Llm on the client
// port, Admin on the admin port, with the admin token / API key helpers),
// runs the `tessera` CLI against it, starts extra replicas (for `tessera
// add` or `--router` registration), kills a replica with SIGKILL and
// restarts it on the same port, and stops / restarts the router. The
// destructor kills the router and every replica, so nothing outlives a test.
//
// Not thread-safe, except the stubs, channels and the read-only accessors,
// which may be used from any thread while the cluster's shape does not
// change (gRPC stubs are thread-safe).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "tessera/v1/admin.grpc.pb.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tests/integration/process.h"
#include "tests/integration/router_load.h"
#include "tests/integration/worker_cluster.h"

namespace tessera::testing {

struct RouterOptions {
  std::string policy;  // --policy; empty = the router's default
  std::string admin_token = "test-admin-token";
  std::string api_key;  // --api-key; empty = none
  int health_interval_ms = 200;
  int health_timeout_ms = 1000;
  int unhealthy_threshold = 2;
  // Pass the replicas started by RouterCluster::Start as --workers (else the
  // router starts with none, and tests add or register them).
  bool static_workers = true;
  std::vector<std::string> extra_args;  // after the flags above
  // Until the port file appears, health turns SERVING and the static
  // workers are HEALTHY.
  std::chrono::milliseconds start_timeout{30000};
};

struct RouterClusterOptions {
  int replicas = 3;
  int ranks = 1;                         // per replica
  std::vector<std::string> worker_args;  // e.g. StoriesWorkerArgs()
  RouterOptions router;
  std::chrono::milliseconds worker_start_timeout{60000};
};

// What a `tessera` CLI run printed and returned.
struct CliResult {
  int exit_code = -1;  // 124: killed by the timeout
  std::string out;     // stdout
  std::string err;     // stderr
  std::string command;
  std::string Describe() const;  // for failure messages
};

// `tessera ARGS...` exactly as given (TESSERA_* environment cleared), its
// stderr kept in a file under `dir`; killed after `timeout_s`.
CliResult RunCliIn(const std::string& dir, const std::vector<std::string>& args,
                   int timeout_s = 30);

// $TESSERA_ROUTER_LOG_LEVEL (default info) sets the router's --log-level.
std::string RouterLogLevel();

// `tessera-router --host 127.0.0.1 --port 0 --admin-host 127.0.0.1
// --admin-port 0 --http-host 127.0.0.1 --http-port 0 --port-file FILE`
// (RouterCluster::RouterBinary()); the caller appends the other flags. The
// port file then holds "CLIENT_PORT ADMIN_PORT HTTP_PORT".
std::vector<std::string> LoopbackRouterCommand(const std::string& port_file);

class RouterCluster {
 public:
  // The binaries under test ($TESSERA_ROUTER_BINARY / $TESSERA_CLI_BINARY
  // override them).
  static std::string RouterBinary();
  static std::string CliBinary();

  // Starts the replicas (in parallel), then the router. On failure returns
  // nullptr and sets *error (with log tails); whatever started is killed.
  static std::unique_ptr<RouterCluster> Start(const RouterClusterOptions& options,
                                              std::string* error);

  RouterCluster(const RouterCluster&) = delete;
  RouterCluster& operator=(const RouterCluster&) = delete;
  ~RouterCluster();

  // ---- the router ----
  // Starts a router (none may be running) in front of the replicas (see
  // RouterOptions::static_workers) and waits for it. False + *error on
  // failure (the router is then killed).
  bool StartRouter(const RouterOptions& options, std::string* error);
  // Kills the router (SIGTERM, then SIGKILL).
  void StopRouter();
  bool router_running() const { return router_ != nullptr; }
  const RouterOptions& router_options() const { return router_options_; }
  const std::string& client_address() const { return client_address_; }  // "127.0.0.1:P"
  const std::string& admin_address() const { return admin_address_; }
  // The OpenAI-compatible HTTP API, "127.0.0.1:P".
  const std::string& http_address() const { return http_address_; }
  std::shared_ptr<grpc::Channel> client_channel() const { return client_channel_; }
  std::shared_ptr<grpc::Channel> admin_channel() const { return admin_channel_; }
  tessera::v1::Llm::Stub& llm() const { return *llm_; }
  tessera::v1::Admin::Stub& admin() const { return *admin_; }
  // Call options for llm() carrying the router's API key.
  CallOptions ClientCallOptions(
      std::chrono::milliseconds deadline = std::chrono::seconds(60)) const;
  std::string RouterLogTail(size_t max_bytes = 8000) const;

  // ---- the Admin API (with the router's admin token) ----
  // Adds "authorization: Bearer <token>" (the router's when nullopt; nothing
  // when it is empty) and a deadline.
  void PrepareAdmin(grpc::ClientContext* ctx, std::optional<std::string> token = std::nullopt,
                    std::chrono::milliseconds deadline = std::chrono::seconds(10)) const;
  grpc::Status ListWorkers(std::vector<tessera::v1::WorkerInfo>* workers) const;
  grpc::Status GetClusterStatus(tessera::v1::ClusterStatus* status) const;
  // The worker whose id or address is `key` (nullopt: unknown, or the call
  // failed).
  std::optional<tessera::v1::WorkerInfo> FindWorker(const std::string& key) const;
  // Polls ListWorkers until the worker `key` exists and satisfies `pred`, or
  // `timeout` passes. *last (optional) gets the last view, for messages.
  bool WaitWorker(const std::string& key,
                  const std::function<bool(const tessera::v1::WorkerInfo&)>& pred,
                  std::chrono::milliseconds timeout, std::string* last = nullptr) const;
  bool WaitState(const std::string& key, tessera::v1::WorkerInfo::State state,
                 std::chrono::milliseconds timeout, std::string* last = nullptr) const;
  // ListWorkers as one line per worker (for failure messages).
  std::string DescribeWorkers() const;

  // ---- replicas ----
  int replicas() const { return static_cast<int>(replicas_.size()); }
  // Replica i, or nullptr while it is killed.
  WorkerCluster* replica(int i) const { return replicas_[i].cluster.get(); }
  // The --worker-id of replica i ("w<i>") and its leader's "127.0.0.1:PORT"
  // (kept while it is killed).
  const std::string& worker_id(int i) const { return replicas_[i].worker_id; }
  const std::string& worker_address(int i) const { return replicas_[i].address; }
  // The id the router gave replica i (looked up by its address; its
  // worker_id when the router does not know it).
  std::string RouterId(int i) const;
  // Worker.GetLoad straight from replica i (nullopt when it is down).
  std::optional<tessera::v1::LoadReport> ReplicaLoad(int i) const;
  // Starts one more replica, not known to the router (unless `extra_args`
  // carries --router); returns its index, or -1 and *error.
  int AddReplica(const std::vector<std::string>& extra_args, std::string* error);
  // SIGKILL to every process of replica i (mpirun and its ranks), reaped.
  void KillReplica(int i);
  // Starts replica i again with its flags, on the same port. False + *error.
  bool RestartReplica(int i, std::string* error);

  // ---- the CLI ----
  // RunCliIn(this cluster's directory, ...).
  CliResult RunCli(const std::vector<std::string>& args, int timeout_s = 30) const;
  // `tessera --router ADMIN --admin-token TOKEN ARGS...`.
  CliResult AdminCli(const std::vector<std::string>& args) const;
  // `tessera --endpoint CLIENT [--api-key KEY] ARGS...`.
  CliResult ClientCli(const std::vector<std::string>& args) const;

  // The router's log tail to stderr when the current test failed (the
  // replicas print theirs when they are destroyed).
  void PrintLogsIfTestFailed() const;

 private:
  struct Replica {
    std::string worker_id;
    std::vector<std::string> args;  // after --host/--port/--port-file
    std::string address;
    int port = 0;
    std::unique_ptr<WorkerCluster> cluster;
  };

  RouterCluster() = default;

  int ranks_ = 1;
  std::vector<std::string> worker_args_;
  std::chrono::milliseconds worker_start_timeout_{60000};
  std::vector<Replica> replicas_;
  int static_replicas_ = 0;  // replicas_[0, static_replicas_) are --workers

  std::string dir_;
  int router_starts_ = 0;
  RouterOptions router_options_;
  std::unique_ptr<Process> router_;
  std::string client_address_;
  std::string admin_address_;
  std::string http_address_;
  std::shared_ptr<grpc::Channel> client_channel_;
  std::shared_ptr<grpc::Channel> admin_channel_;
  std::unique_ptr<tessera::v1::Llm::Stub> llm_;
  std::unique_ptr<tessera::v1::Admin::Stub> admin_;
};

// The worker's state name ("HEALTHY", ...) for messages.
std::string StateName(tessera::v1::WorkerInfo::State state);

}  // namespace tessera::testing
