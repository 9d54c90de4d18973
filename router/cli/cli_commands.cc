#include "router/cli/cli_commands.h"

#include <algorithm>
#include <istream>
#include <iterator>
#include <memory>
#include <ostream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/api/cluster_channel.h"
#include "common/api/grpc_status.h"
#include "common/api/wire_names.h"
#include "router/cli/cli_format.h"
#include "router/cli/cli_watch.h"
#include "tessera/v1/admin.grpc.pb.h"
#include "tessera/v1/llm.grpc.pb.h"

namespace tessera::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::string CodeName(grpc::StatusCode code) { return api::StatusCodeName(code); }

std::string FinishReasonName(v1::FinishReason reason) {
  const absl::string_view word = api::FinishReasonWord(reason);
  return word.empty() ? "unspecified" : std::string(word);
}

// One invocation's connection to a server (the router's admin port, or the
// public endpoint for generate) and how its calls fail.
class Connection {
 public:
  Connection(
      const CliArgs& args, CliIo& io, std::string address, std::string bearer,
      std::optional<double> timeout_s,
      std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials())
      : args_(args),
        io_(io),
        address_(std::move(address)),
        bearer_(std::move(bearer)),
        timeout_s_(timeout_s),
        channel_(grpc::CreateChannel(address_, credentials)) {}

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // Sets the deadline (when there is one) and the bearer token (when set).
  void Prepare(grpc::ClientContext& ctx) const {
    if (timeout_s_.has_value()) {
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::microseconds(static_cast<int64_t>(*timeout_s_ * 1e6)));
    }
    if (!bearer_.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", bearer_));
  }

  // Prints "tessera: <command>: <CODE>: <message>" and returns the exit code.
  int Fail(const grpc::Status& status) const { return Fail(status, io_.err); }
  int Fail(const grpc::Status& status, std::ostream& err) const {
    const bool connected = channel_->GetState(false) == GRPC_CHANNEL_READY;
    const int code = ExitCodeForStatus(status, connected);
    std::string message = status.error_message();
    if (code == kExitUnreachable) {
      absl::StrAppend(&message, " (cannot reach ", address_, ")");
    } else if (code == kExitAuth) {
      const absl::string_view option =
          args_.command == Command::kGenerate ? "--api-key" : "--admin-token";
      if (!absl::StrContains(message, option)) absl::StrAppend(&message, " (check ", option, ")");
    }
    err << "tessera: " << CommandName(*args_.command) << ": " << CodeName(status.error_code())
        << ": " << message << "\n";
    return code;
  }

 private:
  const CliArgs& args_;
  CliIo& io_;
  const std::string address_;
  const std::string bearer_;
  const std::optional<double> timeout_s_;
  std::shared_ptr<grpc::Channel> channel_;
};

void PrintJson(CliIo& io, const nlohmann::ordered_json& j) {
  io.out << (io.compact_json ? j.dump() : j.dump(2)) << "\n";
}

// Polls ListWorkers until worker `id` (the router's id for it, as DrainWorker
// returned it: the argument may be the id the worker reports) has no in-flight
// requests at the router and reports no running or waiting sequences, or
// until --wait-timeout.
int WaitDrained(const CliArgs& a, CliIo& io, const Connection& conn, v1::Admin::Stub& stub,
                const std::string& id) {
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::microseconds(static_cast<int64_t>(a.wait_timeout_s * 1e6));
  std::string last_progress;
  while (true) {
    grpc::ClientContext ctx;
    conn.Prepare(ctx);
    v1::ListWorkersResponse list;
    const grpc::Status status = stub.ListWorkers(&ctx, v1::ListWorkersRequest(), &list);
    if (!status.ok()) return conn.Fail(status);
    auto it = std::find_if(list.workers().begin(), list.workers().end(),
                           [&id](const v1::WorkerInfo& w) { return w.id() == id; });
    if (it == list.workers().end()) {
      io.err << "tessera: drain: NOT_FOUND: worker " << a.argument
             << " is no longer listed (removed while draining)\n";
      return kExitNotFound;
    }
    const v1::WorkerInfo& worker = *it;
    // No load report yet: nothing known to be running there.
    const int64_t running = worker.has_load() ? worker.load().running() : 0;
    const int64_t waiting = worker.has_load() ? worker.load().waiting() : 0;
    const double waited_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (worker.in_flight() == 0 && running == 0 && waiting == 0) {
      if (a.json) {
        PrintJson(io,
                  {{"worker", WorkerToJson(worker)}, {"drained", true}, {"waited_s", waited_s}});
      } else {
        io.out << absl::StrFormat("worker %s drained (waited %.1f s)\n", a.argument, waited_s);
      }
      return kExitOk;
    }
    const std::string progress = absl::StrFormat("worker %s: %d in flight, %d running, %d waiting",
                                                 a.argument, worker.in_flight(), running, waiting);
    if (Clock::now() >= deadline) {
      if (a.json) {
        PrintJson(io,
                  {{"worker", WorkerToJson(worker)}, {"drained", false}, {"waited_s", waited_s}});
      }
      io.err << absl::StrFormat("tessera: drain: --wait timed out after %.1f s; %s\n", waited_s,
                                progress);
      return kExitWaitTimedOut;
    }
    if (progress != last_progress) {
      io.err << "tessera: drain: waiting: " << progress << "\n";
      last_progress = progress;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    std::this_thread::sleep_for(
        std::max(std::chrono::milliseconds(1), std::min(io.wait_poll_interval, left)));
  }
}

// One admin call (the command), its output on io.out.
int RunAdminCall(const CliArgs& a, CliIo& io, const Connection& conn, v1::Admin::Stub* stub) {
  grpc::ClientContext ctx;
  conn.Prepare(ctx);
  switch (*a.command) {
    case Command::kWorkers: {
      v1::ListWorkersResponse resp;
      const grpc::Status status = stub->ListWorkers(&ctx, v1::ListWorkersRequest(), &resp);
      if (!status.ok()) return conn.Fail(status, io.err);
      if (a.json) {
        PrintJson(io, WorkersToJson(resp));
      } else {
        io.out << FormatWorkersTable(resp);
      }
      return kExitOk;
    }
    case Command::kStatus: {
      v1::ClusterStatus resp;
      const grpc::Status status =
          stub->GetClusterStatus(&ctx, v1::GetClusterStatusRequest(), &resp);
      if (!status.ok()) return conn.Fail(status, io.err);
      if (a.json) {
        PrintJson(io, ClusterStatusToJson(resp));
      } else {
        io.out << FormatClusterStatus(resp);
      }
      return kExitOk;
    }
    case Command::kDrain: {
      v1::DrainWorkerRequest req;
      req.set_id(a.argument);
      v1::DrainWorkerResponse resp;
      const grpc::Status status = stub->DrainWorker(&ctx, req, &resp);
      if (!status.ok()) return conn.Fail(status, io.err);
      if (!a.wait) {
        if (a.json) {
          PrintJson(io, {{"worker", WorkerToJson(resp.worker())}});
        } else {
          io.out << "draining worker " << a.argument << " (" << resp.worker().in_flight()
                 << " in flight)\n";
        }
        return kExitOk;
      }
      return WaitDrained(a, io, conn, *stub,
                         resp.worker().id().empty() ? a.argument : resp.worker().id());
    }
    case Command::kUndrain: {
      v1::UndrainWorkerRequest req;
      req.set_id(a.argument);
      v1::UndrainWorkerResponse resp;
      const grpc::Status status = stub->UndrainWorker(&ctx, req, &resp);
      if (!status.ok()) return conn.Fail(status, io.err);
      if (a.json) {
        PrintJson(io, {{"worker", WorkerToJson(resp.worker())}});
      } else {
        io.out << "undrained worker " << a.argument << " (" << StateName(resp.worker().state())
               << ")\n";
      }
      return kExitOk;
    }
    case Command::kAdd: {
      v1::AddWorkerRequest req;
      req.set_address(a.argument);
      v1::AddWorkerResponse resp;
      const grpc::Status status = stub->AddWorker(&ctx, req, &resp);
      if (!status.ok()) return conn.Fail(status, io.err);
      if (a.json) {
        PrintJson(io, {{"worker", WorkerToJson(resp.worker())}});
      } else {
        io.out << "added worker " << resp.worker().id() << " at " << resp.worker().address() << " ("
               << StateName(resp.worker().state()) << ")\n";
      }
      return kExitOk;
    }
    case Command::kRemove: {
      v1::RemoveWorkerRequest req;
      req.set_id(a.argument);
      v1::RemoveWorkerResponse resp;
      const grpc::Status status = stub->RemoveWorker(&ctx, req, &resp);
      if (!status.ok()) return conn.Fail(status, io.err);
      if (a.json) {
        PrintJson(io, {{"removed", a.argument}});
      } else {
        io.out << "removed worker " << a.argument << "\n";
      }
      return kExitOk;
    }
    case Command::kGenerate:
      break;
  }
  io.err << "tessera: internal error: not an admin command\n";
  return kExitCallFailed;
}

int RunAdmin(const CliArgs& a, CliIo& io) {
  Connection conn(a, io, a.router, a.admin_token, a.AdminTimeoutSeconds());
  auto stub = v1::Admin::NewStub(conn.channel());
  if (!a.watch) return RunAdminCall(a, io, conn, stub.get());
  return RunWatch(a, io,
                  [&](CliIo& frame_io) { return RunAdminCall(a, frame_io, conn, stub.get()); });
}

int RunGenerate(const CliArgs& a, CliIo& io) {
  std::string prompt = a.argument;
  if (prompt == "-") {
    prompt.assign(std::istreambuf_iterator<char>(io.in), std::istreambuf_iterator<char>());
    while (!prompt.empty() && (prompt.back() == '\n' || prompt.back() == '\r')) prompt.pop_back();
    if (prompt.empty()) {
      io.err << "tessera: generate: the prompt read from stdin is empty\n";
      return kExitUsage;
    }
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!a.tls_ca.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls =
        api::ClientTlsCredentials(a.tls_ca, a.tls_cert, a.tls_key);
    if (!tls.ok()) {
      io.err << "tessera: generate: " << tls.status().message() << "\n";
      return kExitUsage;
    }
    credentials = *std::move(tls);
  }
  Connection conn(a, io, a.endpoint, a.api_key, a.timeout_s, std::move(credentials));
  auto stub = v1::Llm::NewStub(conn.channel());
  v1::GenerateRequest req;
  req.set_text(prompt);
  req.set_return_text(true);
  if (a.max_tokens.has_value()) req.mutable_sampling()->set_max_tokens(*a.max_tokens);
  if (a.temperature.has_value()) req.mutable_sampling()->set_temperature(*a.temperature);
  if (a.seed.has_value()) req.mutable_sampling()->set_seed(*a.seed);

  grpc::ClientContext ctx;
  conn.Prepare(ctx);
  auto reader = stub->Generate(&ctx, req);
  v1::GenerateResponse msg;
  v1::GenerateResponse last;  // the message with the finish reason
  bool finished = false;
  char last_char = '\n';
  while (reader->Read(&msg)) {
    if (!msg.text().empty()) {
      io.out << msg.text() << std::flush;
      last_char = msg.text().back();
    }
    if (msg.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      finished = true;
      last = msg;
    }
  }
  const grpc::Status status = reader->Finish();
  if (io.out_is_terminal && last_char != '\n') io.out << "\n" << std::flush;
  if (!status.ok()) return conn.Fail(status);
  if (!finished) {
    io.err << "tessera: generate: the stream ended without a finish reason\n";
    return kExitCallFailed;
  }
  const v1::Usage& u = last.usage();
  io.err << absl::StrFormat(
      "finish_reason: %s, prompt_tokens: %d, completion_tokens: %d, cached_prompt_tokens: %d%s\n",
      FinishReasonName(last.finish_reason()), u.prompt_tokens(), u.completion_tokens(),
      u.cached_prompt_tokens(), last.worker_id().empty() ? "" : ", worker: " + last.worker_id());
  if (last.finish_reason() == v1::FINISH_REASON_ERROR ||
      last.finish_reason() == v1::FINISH_REASON_ABORT) {
    io.err << "tessera: generate: the request ended with finish reason "
           << FinishReasonName(last.finish_reason())
           << (last.error_message().empty() ? "" : ": " + last.error_message()) << "\n";
    return kExitCallFailed;
  }
  return kExitOk;
}

}  // namespace

int ExitCodeForStatus(const grpc::Status& status, bool connected) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitAuth;
    case grpc::StatusCode::UNAVAILABLE:
      return kExitUnreachable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return connected ? kExitCallFailed : kExitUnreachable;
    default:
      return kExitCallFailed;
  }
}

int RunCli(const std::vector<std::string>& args, const EnvLookup& env, CliIo& io) {
  absl::StatusOr<CliArgs> parsed = ParseCliArgs(args, env);
  if (!parsed.ok()) {
    io.err << "tessera: " << parsed.status().message() << "\nRun 'tessera --help' for usage.\n";
    return kExitUsage;
  }
  const CliArgs& a = *parsed;
  if (a.help) {
    io.out << HelpText(a.command);
    return kExitOk;
  }
  if (*a.command == Command::kGenerate) return RunGenerate(a, io);
  return RunAdmin(a, io);
}

}  // namespace tessera::cli
