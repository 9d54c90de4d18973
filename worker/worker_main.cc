// tessera-worker: one replica of the model behind gRPC.
//
//   mpirun -np N tessera-worker (--model DIR | --dummy tiny) --port P [--router ADDR]
//
// Rank 0 (the leader) serves tessera.v1.Worker and tessera.v1.Llm, with
// grpc.health.v1 and server reflection, runs the engine thread and broadcasts
// each step plan; ranks 1..N-1 follow the plans (RunFollower) until the
// leader's shutdown plan. SIGTERM, SIGINT, SIGUSR1 (which mpirun forwards to
// every rank) or the Drain RPC drain the leader; followers ignore those signals
// and leave with the leader's shutdown plan. A step that runs far past the
// recent ones (--stall-*: a rank may be hung) turns health NOT_SERVING until
// it completes after all. A failed step (a rank died or hung past
// --step-timeout) turns health NOT_SERVING, ends in-flight requests with
// UNAVAILABLE and aborts the whole MPI job (exit non-zero).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/api/cluster_channel.h"
#include "common/api/cluster_flags.h"
#include "common/cli.h"
#include "common/grpc/library_scope.h"
#include "common/grpc/server_setup.h"
#include "common/logging.h"
#include "common/metrics/metrics_http.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "worker/comm/timed_communicator.h"
#include "worker/drain_signals.h"
#include "worker/exec/replica_protocol.h"
#include "worker/flags.h"
#include "worker/hang_detection.h"
#include "worker/server/engine_loop.h"
#include "worker/server/kv_event_hub.h"
#include "worker/server/registration.h"
#include "worker/server/service.h"
#include "worker/server/serving_state.h"
#include "worker/server/worker_metrics.h"

ABSL_FLAG(std::string, host, "127.0.0.1",
          "Address the gRPC server listens on (rank 0); a non-loopback address (0.0.0.0) needs "
          "--cluster-token or mTLS (--tls-cert/--tls-key/--tls-ca)");
ABSL_FLAG(int, port, 50051, "gRPC port of rank 0; 0 = pick a free port (see --port-file)");
ABSL_FLAG(std::string, port_file, "",
          "After the server listens, rank 0 writes the bound port here (atomically: write + "
          "rename): \"GRPC_PORT\", or \"GRPC_PORT METRICS_PORT\" with --metrics-port");
ABSL_FLAG(int, metrics_port, -1,
          "Port of rank 0's Prometheus /metrics (HTTP); -1 = no listener (the default, so "
          "several workers fit on one machine), 0 = a free port (see --port-file). The metrics "
          "are recorded either way");
ABSL_FLAG(std::string, metrics_host, "", "Address /metrics listens on; default: --host");
ABSL_FLAG(double, log_stats_interval, 10.0,
          "Seconds between the stats lines a busy worker logs (throughput, running/waiting "
          "requests, KV cache use, prefix-cache hit rate)");
ABSL_FLAG(bool, disable_log_stats, false, "Do not log the periodic stats line");
ABSL_FLAG(double, shutdown_timeout, 30.0,
          "Seconds a drain (Drain RPC, SIGTERM, SIGINT, SIGUSR1) lets in-flight requests "
          "finish; the rest then end with UNAVAILABLE and the process still exits 0");
ABSL_FLAG(double, step_timeout, 30.0,
          "Seconds one collective of the leader may take before the replica is declared "
          "failed (a rank died or hung): health NOT_SERVING, requests UNAVAILABLE, exit 1. "
          "0 = no limit");
ABSL_FLAG(int, idle_heartbeat_ms, 1000,
          "When idle, the leader checks the other ranks with an empty plan this often (ms); "
          "0 = never");
ABSL_FLAG(std::string, router, "",
          "Router address (host:port of its client port) to register with and heartbeat; "
          "empty = just serve");
ABSL_FLAG(std::string, worker_id, "", "This worker's id at the router; default host:port");
ABSL_FLAG(std::string, advertise_address, "",
          "host:port the router should use to reach this worker; default the listening "
          "address (this host's name when --host is 0.0.0.0 or ::)");
ABSL_FLAG(int, heartbeat_interval_ms, 1000,
          "Router heartbeat interval (ms) unless the router's RegisterWorker reply sets one");
ABSL_FLAG(int, max_kv_watch_batches, 1024,
          "KV event batches a WatchKvEvents client may fall behind before its stream ends "
          "with RESOURCE_EXHAUSTED (it then resubscribes for a fresh snapshot)");

namespace tessera {
namespace {

using Clock = std::chrono::steady_clock;

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

absl::Status WritePortFile(const std::string& path, int port, int metrics_port) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port;
    if (metrics_port > 0) out << " " << metrics_port;
    out << "\n";
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("--port-file: cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("--port-file: cannot rename ", tmp, " to ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

// The replica's collective time, when its communicator keeps it (TimedCommunicator).
std::function<double()> CollectiveSecondsOf(const Communicator& comm) {
  if (const auto* timed = dynamic_cast<const TimedCommunicator*>(&comm); timed != nullptr) {
    return [timed] { return timed->seconds(); };
  }
  return nullptr;
}

void SetServing(grpc::Server& server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server.GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus("", serving);
  health->SetServingStatus("tessera.v1.Worker", serving);
  health->SetServingStatus("tessera.v1.Llm", serving);
}

int RunLeader(Replica& replica, const api::ClusterCredentials& cluster,
              const std::optional<StallOptions>& stall) {
  const auto shutdown_timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(0.0, absl::GetFlag(FLAGS_shutdown_timeout))));
  KvEventHub hub(replica.cache.block_size,
                 static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_max_kv_watch_batches))));
  EngineLoopOptions loop_options;
  loop_options.max_waiting = replica.sched.max_waiting;
  loop_options.idle_heartbeat_interval =
      std::chrono::milliseconds(std::max(0, absl::GetFlag(FLAGS_idle_heartbeat_ms)));
  // Metrics are always recorded; --metrics-port only decides whether /metrics listens.
  metrics::Registry registry;
  WorkerMetricsOptions metrics_options;
  metrics_options.model_name = replica.limits.model_name;
  metrics_options.max_model_len = replica.sched.max_model_len;
  metrics_options.tp_size = replica.comm->size();
  WorkerMetrics worker_metrics(registry, metrics_options);
  loop_options.metrics = &worker_metrics;
  loop_options.log_stats_interval =
      absl::GetFlag(FLAGS_disable_log_stats)
          ? std::chrono::milliseconds(0)
          : std::chrono::milliseconds(static_cast<int64_t>(
                std::max(0.0, absl::GetFlag(FLAGS_log_stats_interval)) * 1000));
  loop_options.collective_seconds = CollectiveSecondsOf(*replica.comm);
  // Health: SERVING once started, until draining, failed or stalled.
  ServingState serving;
  const std::unique_ptr<StepWatchdog> watchdog =
      MakeStallWatchdog(stall, replica.comm->size(), serving);
  loop_options.watchdog = watchdog.get();
  EngineLoop loop(*replica.engine, *replica.comm, &hub, loop_options);

  ServiceContext ctx;
  ctx.loop = &loop;
  ctx.hub = &hub;
  ctx.text = replica.text.get();
  ctx.limits = replica.limits;
  ctx.block_size = replica.cache.block_size;
  const api::ClusterAuth auth(cluster, "this worker");
  ctx.auth = &auth;
  WorkerService worker_service(ctx);
  LlmService llm_service(ctx);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  rpc::ConfigureServerBuilder(builder);
  const std::string host = absl::GetFlag(FLAGS_host);
  const std::string listen = absl::StrCat(host, ":", absl::GetFlag(FLAGS_port));
  int bound_port = 0;
  builder.AddListeningPort(listen, api::ClusterServerCredentials(cluster), &bound_port);
  builder.RegisterService(&worker_service);
  builder.RegisterService(&llm_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    spdlog::error("{}", rpc::ListenError(listen, "--host/--port").message());
    if (absl::Status s = replica.engine->Shutdown(); !s.ok()) MpiSession::Abort(1);
    return 1;
  }

  std::unique_ptr<http::Server> metrics_server;
  if (const int metrics_port = absl::GetFlag(FLAGS_metrics_port); metrics_port >= 0) {
    const std::string metrics_host =
        absl::GetFlag(FLAGS_metrics_host).empty() ? host : absl::GetFlag(FLAGS_metrics_host);
    absl::StatusOr<std::unique_ptr<http::Server>> started =
        metrics::StartMetricsServer(metrics_host, metrics_port, registry);
    if (!started.ok()) {
      spdlog::error("--metrics-port: {}", started.status().message());
      server->Shutdown();
      if (absl::Status s = replica.engine->Shutdown(); !s.ok()) MpiSession::Abort(1);
      return 1;
    }
    metrics_server = *std::move(started);
    spdlog::info("Prometheus metrics on http://{}:{}/metrics", metrics_host,
                 metrics_server->port());
  }

  const std::string advertise =
      !absl::GetFlag(FLAGS_advertise_address).empty()
          ? absl::GetFlag(FLAGS_advertise_address)
          : absl::StrCat(host == "0.0.0.0" || host == "::" || host == "[::]" ? HostName() : host,
                         ":", bound_port);
  ctx.worker_id =
      absl::GetFlag(FLAGS_worker_id).empty() ? advertise : absl::GetFlag(FLAGS_worker_id);
  std::atomic<bool> drain_started{false};
  ctx.drain = [&]() {
    if (!drain_started.exchange(true)) {
      spdlog::info("draining: no new requests; in-flight ones get up to {} s",
                   absl::GetFlag(FLAGS_shutdown_timeout));
    }
    serving.SetDraining();
    return loop.Drain(Clock::now() + shutdown_timeout);
  };

  ctx.ready.store(true, std::memory_order_release);  // publishes worker_id and drain
  loop.Start();
  serving.Bind([&server](bool on) { SetServing(*server, on); });
  serving.SetStarted();
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file); !port_file.empty()) {
    if (absl::Status s =
            WritePortFile(port_file, bound_port, metrics_server ? metrics_server->port() : 0);
        !s.ok()) {
      spdlog::error("{}", s.message());
    }
  }
  spdlog::info("tessera-worker {} serving {} on {} (port {}), {} rank(s)", ctx.worker_id,
               replica.model_name, listen, bound_port, replica.comm->size());

  std::unique_ptr<Registration> registration;
  if (const std::string router = absl::GetFlag(FLAGS_router); !router.empty()) {
    Registration::Options ro;
    ro.router = router;
    ro.worker_id = ctx.worker_id;
    ro.incarnation = Registration::NewIncarnation();
    ro.address = advertise;
    ro.cluster = cluster;
    ro.heartbeat_interval =
        std::chrono::milliseconds(std::max(50, absl::GetFlag(FLAGS_heartbeat_interval_ms)));
    registration = std::make_unique<Registration>(std::move(ro));
    registration->Start();
  }

  // Drain signals (InstallDrainSignalHandlers) are handled on their own
  // thread, so no work happens in a signal handler.
  DrainSignalThread signal_thread([&] { ctx.drain(); });

  const absl::Status status = loop.Wait();
  if (watchdog) watchdog->Stop();
  if (status.ok()) {
    serving.SetDraining();
  } else {
    serving.SetFailed();
  }
  if (registration) registration->Stop();
  if (!status.ok()) {
    spdlog::error("replica failed, aborting the MPI job: {}", status);
    // In-flight streams already ended with UNAVAILABLE; stay up a moment so
    // health checkers see NOT_SERVING and the streams' statuses go out.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    MpiSession::Abort(1);
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (metrics_server) metrics_server->Shutdown(absl::Seconds(1));
  signal_thread.Stop();
  spdlog::info("drained; exiting");
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  tessera::ParseCommandLine(
      argc, argv,
      "one model replica behind gRPC (tessera.v1.Worker and tessera.v1.Llm).\n"
      "  tessera-worker (--model DIR | --dummy tiny) [--port P | --port 0 --port-file F] "
      "[--router ADDR]\n"
      "  mpirun -np N tessera-worker ...   (tensor parallelism over N ranks; rank 0 serves)\n"
      "Drain: the Drain RPC, or SIGTERM/SIGINT to rank 0, or SIGUSR1 to mpirun (it forwards\n"
      "SIGUSR1 to every rank; SIGTERM/SIGINT to mpirun kill the whole job at once).");
  // Before MPI and gRPC start threads, so that they inherit the mask and the
  // drain signals mostly land on the leader's signal thread; the self-pipe
  // handler (installed below) copes with any thread that has them unblocked.
  // Out-of-range ports are usage errors (gRPC would pick a random port).
  for (const auto& [flag, port, may_be_off] :
       {std::tuple("--port", absl::GetFlag(FLAGS_port), false),
        std::tuple("--metrics-port", absl::GetFlag(FLAGS_metrics_port), true)}) {
    if (absl::Status s = tessera::rpc::CheckPortFlag(flag, port, may_be_off); !s.ok()) {
      std::fprintf(stderr, "tessera-worker: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  const sigset_t drain_signals = tessera::DrainSignals();
  pthread_sigmask(SIG_BLOCK, &drain_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto mpi = tessera::MpiSession::Init(&argc, &argv);
  if (!mpi.ok()) {
    std::fprintf(stderr, "tessera-worker: %s\n", std::string(mpi.status().message()).c_str());
    return 1;
  }
  // Before any gRPC object (the cluster credentials below): shuts gRPC down
  // on this thread at the end.
  const tessera::rpc::GrpcLibraryScope grpc;
  const int rank = (*mpi)->world_rank();
  if (auto s = tessera::InitLogging(absl::GetFlag(FLAGS_log_level), absl::StrCat("worker r", rank));
      !s.ok()) {
    std::fprintf(stderr, "tessera-worker: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  // After MPI_Init, so no handler of the MPI library replaces ours.
  if (auto s = tessera::InstallDrainSignalHandlers(/*leader=*/rank == 0); !s.ok()) {
    std::fprintf(stderr, "tessera-worker: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  // The cluster credential, before the (long) model load: without one the
  // worker may only listen on loopback.
  absl::StatusOr<tessera::api::ClusterCredentials> cluster =
      tessera::api::ClusterCredentialsFromFlags();
  if (cluster.ok()) {
    absl::Status s = tessera::api::CheckClusterListener(absl::GetFlag(FLAGS_host), "--host",
                                                        "tessera.v1.Worker", *cluster);
    if (!s.ok()) cluster = s;
  }
  if (!cluster.ok()) {
    spdlog::error("{}", cluster.status().message());
    if ((*mpi)->world_size() > 1) tessera::MpiSession::Abort(2);
    return 2;
  }
  // Every rank checks the flags, so a bad one ends them all alike.
  const absl::StatusOr<std::optional<tessera::StallOptions>> stall =
      tessera::StallOptionsFromFlags();
  if (!stall.ok()) {
    spdlog::error("{}", stall.status().message());
    return 2;
  }
  tessera::MpiCommunicatorOptions comm_options;
  if (rank == 0) {
    comm_options.timeout = std::chrono::milliseconds(
        static_cast<int64_t>(std::max(0.0, absl::GetFlag(FLAGS_step_timeout)) * 1000));
  }
  absl::StatusOr<std::unique_ptr<tessera::Replica>> replica =
      tessera::BuildReplicaFromFlags(**mpi, comm_options);
  if (!replica.ok()) {
    spdlog::error("{}", replica.status().message());
    if ((*mpi)->world_size() > 1) tessera::MpiSession::Abort(2);
    return 2;
  }
  if (rank == 0) return tessera::RunLeader(**replica, *cluster, *stall);
  absl::Status status = tessera::RunFollower(*(*replica)->executor, *(*replica)->comm);
  if (!status.ok()) {
    spdlog::error("{}", status.message());
    tessera::MpiSession::Abort(1);
  }
  return 0;
}
