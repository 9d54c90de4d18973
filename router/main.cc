// tessera-router: places client requests on worker replicas and relays their
// token streams.
//
//   tessera-router --workers host:port,host:port [--port 50050] [--admin-port 50055]
//   tessera-router --workers dns:///tessera-worker-headless:50051 --admin-token T
//
// Client port: tessera.v1.Llm and tessera.v1.Registry; admin port:
// tessera.v1.Admin; both with grpc.health.v1 and server reflection.
// SIGTERM / SIGINT: health NOT_SERVING, no new calls, in-flight streams get up
// to --shutdown-timeout, then the process exits 0.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/grpc/library_scope.h"
#include "common/logging.h"
#include "router/flags.h"
#include "router/router_server.h"

namespace tessera::router {
namespace {

absl::Status WritePortFile(const std::string& path, int port, int admin_port, int http_port) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << " " << admin_port << " " << http_port << "\n";
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

// Signals reach main through a self-pipe: the handler only writes the signal
// number (async-signal-safe), whichever thread the kernel picks.
int g_signal_pipe[2] = {-1, -1};

extern "C" void OnStopSignal(int sig) {
  const int saved_errno = errno;
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &byte, 1);
  errno = saved_errno;
}

absl::Status InstallStopSignalHandlers() {
  if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", strerror(errno)));
  }
  for (const int sig : {SIGTERM, SIGINT}) {
    struct sigaction sa = {};
    sa.sa_handler = OnStopSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, nullptr) != 0) {
      return absl::InternalError(absl::StrCat("sigaction(", sig, "): ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// Blocks until SIGTERM or SIGINT arrives; returns it.
int WaitForStopSignal() {
  pollfd pfd{g_signal_pipe[0], POLLIN, 0};
  while (true) {
    if (poll(&pfd, 1, /*timeout_ms=*/-1) <= 0) continue;  // EINTR
    unsigned char sig = 0;
    if (read(g_signal_pipe[0], &sig, 1) == 1) return sig;
  }
}

int Run() {
  absl::StatusOr<RouterServerOptions> options = RouterOptionsFromFlags();
  if (!options.ok()) {
    spdlog::error("{}", options.status().message());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<RouterServer>> server = RouterServer::Start(std::move(*options));
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return server.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (const std::string port_file = PortFileFlag(); !port_file.empty()) {
    if (absl::Status s = WritePortFile(port_file, (*server)->port(), (*server)->admin_port(),
                                       (*server)->http_port());
        !s.ok()) {
      spdlog::error("{}", s.message());
      return 1;
    }
  }
  const int sig = WaitForStopSignal();
  const absl::Duration grace = ShutdownTimeoutFlag();
  spdlog::info("received signal {} ({}): no new requests; in-flight ones get up to {}", sig,
               strsignal(sig), absl::FormatDuration(grace));
  (*server)->Shutdown(grace);
  server->reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace tessera::router

int main(int argc, char** argv) {
  tessera::ParseCommandLine(
      argc, argv,
      "the Tessera router: places requests on worker replicas and relays their streams.\n"
      "  tessera-router --workers HOST:PORT[,HOST:PORT...] [--port 50050] [--admin-port 50055]\n"
      "  tessera-router --workers dns:///NAME:PORT   (follow a DNS name, e.g. a headless "
      "Service)\n"
      "Workers may also register themselves (tessera-worker --router ADDR) or be added with\n"
      "`tessera add ADDR`. SIGTERM/SIGINT: stop accepting, let in-flight streams finish (up to\n"
      "--shutdown-timeout), exit 0.");
  signal(SIGPIPE, SIG_IGN);
  if (absl::Status s = tessera::InitLogging(tessera::router::LogLevelFlag(), "router"); !s.ok()) {
    std::fprintf(stderr, "tessera-router: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (absl::Status s = tessera::router::InstallStopSignalHandlers(); !s.ok()) {
    std::fprintf(stderr, "tessera-router: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  const tessera::rpc::GrpcLibraryScope grpc;  // shuts gRPC down here, after Run's objects
  return tessera::router::Run();
}
