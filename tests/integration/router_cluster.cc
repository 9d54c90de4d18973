// RouterCluster (router_cluster.h): starting the replicas and the router,
// the Admin API helpers, replicas killed and restarted. The CLI runs are in
// router_cluster_cli.cc.
#include "tests/integration/router_cluster.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/stream.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;

int PortOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? 0 : std::atoi(address.c_str() + colon + 1);
}

}  // namespace

std::string StateName(tessera::v1::WorkerInfo::State state) {
  return tessera::v1::WorkerInfo::State_Name(state);
}

std::string RouterLogLevel() {
  const char* env = std::getenv("TESSERA_ROUTER_LOG_LEVEL");
  return env != nullptr && *env != '\0' ? env : "info";
}

std::vector<std::string> LoopbackRouterCommand(const std::string& port_file) {
  return {RouterCluster::RouterBinary(),
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--admin-host",
          "127.0.0.1",
          "--admin-port",
          "0",
          "--http-host",
          "127.0.0.1",
          "--http-port",
          "0",
          "--port-file",
          port_file};
}

std::string RouterCluster::RouterBinary() {
  if (const char* env = std::getenv("TESSERA_ROUTER_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
  return TESSERA_ROUTER_BINARY;
}

std::unique_ptr<RouterCluster> RouterCluster::Start(const RouterClusterOptions& options,
                                                    std::string* error) {
  for (const std::string& binary : {WorkerCluster::WorkerBinary(), RouterBinary()}) {
    if (!std::filesystem::exists(binary)) {
      *error = "binary " + binary +
               " does not exist: build the tessera-worker, tessera-router and tessera targets "
               "first";
      return nullptr;
    }
  }
  std::unique_ptr<RouterCluster> c(new RouterCluster());
  c->ranks_ = options.ranks;
  c->worker_args_ = options.worker_args;
  c->worker_start_timeout_ = options.worker_start_timeout;
  c->dir_ = MakeTempDir("tessera_router");
  if (c->dir_.empty()) {
    *error = "cannot create a temp dir";
    return nullptr;
  }
  // The replicas start in parallel: each Start only waits on its own job.
  c->replicas_.resize(options.replicas);
  std::vector<std::string> errors(options.replicas);
  std::vector<std::thread> starters;
  for (int i = 0; i < options.replicas; ++i) {
    Replica& r = c->replicas_[i];
    r.worker_id = "w" + std::to_string(i);
    r.args = {"--worker-id", r.worker_id};
    r.args.insert(r.args.end(), options.worker_args.begin(), options.worker_args.end());
    starters.emplace_back([&, i] {
      Replica& mine = c->replicas_[i];
      mine.cluster = WorkerCluster::Start({.ranks = options.ranks,
                                           .worker_args = mine.args,
                                           .start_timeout = options.worker_start_timeout},
                                          &errors[i]);
    });
  }
  for (std::thread& t : starters) t.join();
  for (int i = 0; i < options.replicas; ++i) {
    Replica& r = c->replicas_[i];
    if (r.cluster == nullptr) {
      *error = "replica " + r.worker_id + " did not start: " + errors[i];
      return nullptr;
    }
    r.address = r.cluster->address();
    r.port = PortOf(r.address);
  }
  c->static_replicas_ = options.router.static_workers ? options.replicas : 0;
  if (!c->StartRouter(options.router, error)) return nullptr;
  return c;
}

RouterCluster::~RouterCluster() {
  PrintLogsIfTestFailed();
  StopRouter();
  // Replicas die in their WorkerCluster destructors; in parallel, since each
  // may wait out a SIGTERM grace period.
  std::vector<std::thread> killers;
  for (Replica& r : replicas_) {
    if (r.cluster != nullptr) killers.emplace_back([&r] { r.cluster.reset(); });
  }
  for (std::thread& t : killers) t.join();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool RouterCluster::StartRouter(const RouterOptions& options, std::string* error) {
  if (router_ != nullptr) {
    *error = "StartRouter: a router is running already";
    return false;
  }
  router_options_ = options;
  ++router_starts_;
  const std::string tag = std::to_string(router_starts_);
  const std::string port_file = dir_ + "/router" + tag + ".port";
  const std::string log = dir_ + "/router" + tag + ".log";
  std::vector<std::string> argv = LoopbackRouterCommand(port_file);
  argv.insert(argv.end(), {"--health-interval-ms", std::to_string(options.health_interval_ms),
                           "--health-timeout-ms", std::to_string(options.health_timeout_ms),
                           "--unhealthy-threshold", std::to_string(options.unhealthy_threshold),
                           "--log-level", RouterLogLevel()});
  if (!options.admin_token.empty()) {
    argv.insert(argv.end(), {"--admin-token", options.admin_token});
  }
  if (!options.api_key.empty()) argv.insert(argv.end(), {"--api-key", options.api_key});
  if (!options.policy.empty()) argv.insert(argv.end(), {"--policy", options.policy});
  std::vector<std::string> workers;
  for (int i = 0; i < static_replicas_; ++i) workers.push_back(replicas_[i].address);
  if (!workers.empty()) {
    std::string list;
    for (const std::string& w : workers) list += (list.empty() ? "" : ",") + w;
    argv.insert(argv.end(), {"--workers", list});
  }
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  router_ = SpawnLogged(argv, log, error);
  if (router_ == nullptr) return false;

  auto fail = [&](const std::string& why) {
    *error = why + "\n--- router log ---\n" + RouterLogTail();
    StopRouter();
    return false;
  };
  const std::optional<std::vector<int>> ports =
      WaitPortFile(port_file, 3, *router_, options.start_timeout);
  if (!ports) {
    const std::optional<int> code = router_->WaitExit(milliseconds(0));
    return fail(code ? "the router exited with code " + std::to_string(*code) +
                           " before writing its port file"
                     : "no router port file after " +
                           std::to_string(options.start_timeout.count()) + " ms");
  }
  client_address_ = "127.0.0.1:" + std::to_string((*ports)[0]);
  admin_address_ = "127.0.0.1:" + std::to_string((*ports)[1]);
  http_address_ = "127.0.0.1:" + std::to_string((*ports)[2]);
  client_channel_ = MakeTestChannel(client_address_);
  admin_channel_ = MakeTestChannel(admin_address_);
  llm_ = tessera::v1::Llm::NewStub(client_channel_);
  admin_ = tessera::v1::Admin::NewStub(admin_channel_);

  HealthState health = HealthState::kUnreachable;
  if (!PollUntil(options.start_timeout,
                 [&] {
                   health = CheckHealth(*client_channel_, milliseconds(1000));
                   return health == HealthState::kServing || !router_->Running();
                 }) ||
      health != HealthState::kServing) {
    return fail("the router's client port " + client_address_ +
                " never turned SERVING (last: " + HealthStateName(health) + ")");
  }
  for (int i = 0; i < static_replicas_; ++i) {
    std::string last;
    if (!WaitState(replicas_[i].address, tessera::v1::WorkerInfo::STATE_HEALTHY,
                   options.start_timeout, &last)) {
      return fail("static worker " + replicas_[i].address + " never HEALTHY at the router; " +
                  "last ListWorkers: " + last);
    }
  }
  return true;
}

void RouterCluster::StopRouter() {
  llm_.reset();
  admin_.reset();
  client_channel_.reset();
  admin_channel_.reset();
  if (router_ != nullptr) {
    router_->KillGroup();
    router_.reset();
  }
}

CallOptions RouterCluster::ClientCallOptions(std::chrono::milliseconds deadline) const {
  CallOptions o;
  o.deadline = deadline;
  o.api_key = router_options_.api_key;
  return o;
}

std::string RouterCluster::RouterLogTail(size_t max_bytes) const {
  const std::string log = dir_ + "/router" + std::to_string(router_starts_) + ".log";
  const std::string all = ReadTestFile(log);
  if (all.size() <= max_bytes) return all;
  return "...\n" + all.substr(all.size() - max_bytes);
}

void RouterCluster::PrepareAdmin(grpc::ClientContext* ctx, std::optional<std::string> token,
                                 std::chrono::milliseconds deadline) const {
  const std::string t = token ? *token : router_options_.admin_token;
  if (!t.empty()) ctx->AddMetadata("authorization", "Bearer " + t);
  ctx->set_deadline(std::chrono::system_clock::now() + deadline);
}

grpc::Status RouterCluster::ListWorkers(std::vector<tessera::v1::WorkerInfo>* workers) const {
  grpc::ClientContext ctx;
  PrepareAdmin(&ctx);
  tessera::v1::ListWorkersResponse resp;
  const grpc::Status status = admin_->ListWorkers(&ctx, tessera::v1::ListWorkersRequest(), &resp);
  workers->assign(resp.workers().begin(), resp.workers().end());
  return status;
}

grpc::Status RouterCluster::GetClusterStatus(tessera::v1::ClusterStatus* status) const {
  grpc::ClientContext ctx;
  PrepareAdmin(&ctx);
  return admin_->GetClusterStatus(&ctx, tessera::v1::GetClusterStatusRequest(), status);
}

std::optional<tessera::v1::WorkerInfo> RouterCluster::FindWorker(const std::string& key) const {
  std::vector<tessera::v1::WorkerInfo> workers;
  if (!ListWorkers(&workers).ok()) return std::nullopt;
  for (const tessera::v1::WorkerInfo& w : workers) {
    if (w.id() == key) return w;
  }
  for (const tessera::v1::WorkerInfo& w : workers) {
    if (w.address() == key) return w;
  }
  return std::nullopt;
}

bool RouterCluster::WaitWorker(const std::string& key,
                               const std::function<bool(const tessera::v1::WorkerInfo&)>& pred,
                               std::chrono::milliseconds timeout, std::string* last) const {
  return PollUntil(timeout, [&] {
    const std::optional<tessera::v1::WorkerInfo> w = FindWorker(key);
    if (last != nullptr) *last = w ? w->ShortDebugString() : "(" + key + " not listed)";
    if (w && pred(*w)) return true;
    std::this_thread::sleep_for(milliseconds(20));  // ListWorkers is not free
    return false;
  });
}

bool RouterCluster::WaitState(const std::string& key, tessera::v1::WorkerInfo::State state,
                              std::chrono::milliseconds timeout, std::string* last) const {
  return WaitWorker(
      key, [state](const tessera::v1::WorkerInfo& w) { return w.state() == state; }, timeout, last);
}

std::string RouterCluster::DescribeWorkers() const {
  std::vector<tessera::v1::WorkerInfo> workers;
  const grpc::Status status = ListWorkers(&workers);
  if (!status.ok()) return "ListWorkers failed: " + Describe(status);
  std::string out;
  for (const tessera::v1::WorkerInfo& w : workers) {
    out += "\n  " + w.id() + " " + w.address() + " " + StateName(w.state()) +
           " routed=" + std::to_string(w.requests_routed()) +
           " in_flight=" + std::to_string(w.in_flight()) + " last_error='" + w.last_error() + "'";
  }
  return out;
}

std::string RouterCluster::RouterId(int i) const {
  const std::optional<tessera::v1::WorkerInfo> w = FindWorker(replicas_[i].address);
  return w ? w->id() : replicas_[i].worker_id;
}

std::optional<tessera::v1::LoadReport> RouterCluster::ReplicaLoad(int i) const {
  if (replicas_[i].cluster == nullptr) return std::nullopt;
  return GetLoad(replicas_[i].cluster->stub(), milliseconds(5000));
}

int RouterCluster::AddReplica(const std::vector<std::string>& extra_args, std::string* error) {
  Replica r;
  r.worker_id = "w" + std::to_string(replicas_.size());
  r.args = {"--worker-id", r.worker_id};
  r.args.insert(r.args.end(), worker_args_.begin(), worker_args_.end());
  r.args.insert(r.args.end(), extra_args.begin(), extra_args.end());
  r.cluster = WorkerCluster::Start(
      {.ranks = ranks_, .worker_args = r.args, .start_timeout = worker_start_timeout_}, error);
  if (r.cluster == nullptr) return -1;
  r.address = r.cluster->address();
  r.port = PortOf(r.address);
  replicas_.push_back(std::move(r));
  return static_cast<int>(replicas_.size()) - 1;
}

void RouterCluster::KillReplica(int i) {
  Replica& r = replicas_[i];
  if (r.cluster == nullptr) return;
  // SIGKILL, not the harness's SIGTERM-first: the replica must not drain.
  kill(-r.cluster->job().pid(), SIGKILL);
  KillProcesses(r.cluster->marker());
  r.cluster->job().WaitExit(milliseconds(10000));
  r.cluster.reset();
}

bool RouterCluster::RestartReplica(int i, std::string* error) {
  Replica& r = replicas_[i];
  if (r.cluster != nullptr) {
    *error = "RestartReplica: replica " + r.worker_id + " is running";
    return false;
  }
  std::vector<std::string> args = r.args;
  // After WorkerCluster's own "--port 0": the last one wins.
  args.insert(args.end(), {"--port", std::to_string(r.port)});
  r.cluster = WorkerCluster::Start(
      {.ranks = ranks_, .worker_args = args, .start_timeout = worker_start_timeout_}, error);
  if (r.cluster == nullptr) return false;
  if (r.cluster->address() != r.address) {
    *error = "the restarted replica listens on " + r.cluster->address() + ", not " + r.address;
    return false;
  }
  return true;
}

void RouterCluster::PrintLogsIfTestFailed() const {
  // The replicas' logs are printed by their WorkerCluster destructors.
  if (!::testing::Test::HasFailure() || router_starts_ == 0) return;
  std::fprintf(stderr, "--- tessera-router log ---\n%s\n--- end of router log ---\n",
               RouterLogTail().c_str());
}

}  // namespace tessera::testing
