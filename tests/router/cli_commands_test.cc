// Every tessera CLI command against in-process fake Admin and Llm services
// (callback API, real loopback channel): output, tokens sent and refused, the
// exit codes (3 unknown id, 4 auth, 5 unreachable, 6 drain --wait timeout),
// drain --wait, generate streaming. RunCli in-process for most cases; the
// built `tessera` binary as a subprocess for a few.
#include "router/cli/cli_commands.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <sstream>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tessera/v1/admin.grpc.pb.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tests/testing/subprocess.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAdminToken[] = "admin-s3cret";
constexpr char kApiKey[] = "api-k3y";

// The bearer token of a call, "" when none was sent.
std::string BearerOf(grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return "";
  const std::string value(it->second.data(), it->second.size());
  return value.rfind("Bearer ", 0) == 0 ? value.substr(7) : "<malformed>";
}

// Missing token: UNAUTHENTICATED; wrong one: PERMISSION_DENIED.
grpc::Status CheckToken(grpc::CallbackServerContext* ctx, const std::string& want) {
  const std::string got = BearerOf(ctx);
  if (got.empty()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing token");
  if (got != want) return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "wrong token");
  return grpc::Status::OK;
}

// A unary reaction that never answers until the call is cancelled (deadline).
class HangReactor : public grpc::ServerUnaryReactor {
 public:
  void OnCancel() override { Finish(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }
};

// An Admin service over a table of workers. A drained worker's in-flight
// count and running sequences drop by one per ListWorkers call unless the
// worker id starts with "stuck".
class FakeAdmin final : public v1::Admin::CallbackService {
 public:
  FakeAdmin() {
    v1::WorkerInfo w;
    w.set_id("w-0");
    w.set_address("10.0.0.1:50051");
    w.set_state(v1::WorkerInfo::STATE_HEALTHY);
    w.set_source(v1::WorkerInfo::SOURCE_STATIC);
    w.set_in_flight(3);
    w.mutable_load()->set_running(2);
    w.mutable_load()->set_waiting(1);
    w.mutable_load()->set_kv_blocks_used(64);
    w.mutable_load()->set_kv_blocks_total(256);
    w.mutable_load()->set_prefix_cache_hit_rate(0.5);
    workers_["w-0"] = w;
    w.set_id("stuck-1");
    w.set_address("10.0.0.2:50051");
    workers_["stuck-1"] = w;
  }

  void set_hang_status(bool hang) {
    absl::MutexLock lock(&mu_);
    hang_status_ = hang;
  }
  int list_calls() {
    absl::MutexLock lock(&mu_);
    return list_calls_;
  }
  std::string last_token() {
    absl::MutexLock lock(&mu_);
    return last_token_;
  }

  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* ctx,
                                        const v1::ListWorkersRequest*,
                                        v1::ListWorkersResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    absl::MutexLock lock(&mu_);
    const grpc::Status auth = Auth(ctx);
    if (!auth.ok()) {
      r->Finish(auth);
      return r;
    }
    ++list_calls_;
    for (auto& [id, w] : workers_) {
      *resp->add_workers() = w;
      if (w.state() == v1::WorkerInfo::STATE_DRAINING && id.rfind("stuck", 0) != 0) {
        // Finishing: one request fewer per poll.
        w.set_in_flight(std::max<int64_t>(0, w.in_flight() - 1));
        w.mutable_load()->set_running(std::max(0, w.load().running() - 1));
        w.mutable_load()->set_waiting(std::max(0, w.load().waiting() - 1));
      }
    }
    r->Finish(grpc::Status::OK);
    return r;
  }

  grpc::ServerUnaryReactor* AddWorker(grpc::CallbackServerContext* ctx,
                                      const v1::AddWorkerRequest* req,
                                      v1::AddWorkerResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    absl::MutexLock lock(&mu_);
    grpc::Status status = Auth(ctx);
    if (status.ok() && req->address().find(':') == std::string::npos) {
      status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "address needs a port");
    }
    if (status.ok()) {
      v1::WorkerInfo w;
      w.set_id(absl::StrCat("w-", workers_.size()));
      w.set_address(req->address());
      w.set_state(v1::WorkerInfo::STATE_HEALTHY);
      w.set_source(v1::WorkerInfo::SOURCE_ADMIN);
      workers_[w.id()] = w;
      *resp->mutable_worker() = w;
    }
    r->Finish(status);
    return r;
  }

  grpc::ServerUnaryReactor* RemoveWorker(grpc::CallbackServerContext* ctx,
                                         const v1::RemoveWorkerRequest* req,
                                         v1::RemoveWorkerResponse*) override {
    auto* r = ctx->DefaultReactor();
    absl::MutexLock lock(&mu_);
    grpc::Status status = Auth(ctx);
    if (status.ok() && workers_.erase(req->id()) == 0) status = NotFound(req->id());
    r->Finish(status);
    return r;
  }

  grpc::ServerUnaryReactor* DrainWorker(grpc::CallbackServerContext* ctx,
                                        const v1::DrainWorkerRequest* req,
                                        v1::DrainWorkerResponse* resp) override {
    return SetState(ctx, req->id(), v1::WorkerInfo::STATE_DRAINING, resp->mutable_worker());
  }

  grpc::ServerUnaryReactor* UndrainWorker(grpc::CallbackServerContext* ctx,
                                          const v1::UndrainWorkerRequest* req,
                                          v1::UndrainWorkerResponse* resp) override {
    return SetState(ctx, req->id(), v1::WorkerInfo::STATE_HEALTHY, resp->mutable_worker());
  }

  grpc::ServerUnaryReactor* GetClusterStatus(grpc::CallbackServerContext* ctx,
                                             const v1::GetClusterStatusRequest*,
                                             v1::ClusterStatus* resp) override {
    absl::MutexLock lock(&mu_);
    if (hang_status_) return new HangReactor();
    auto* r = ctx->DefaultReactor();
    const grpc::Status auth = Auth(ctx);
    resp->set_workers(static_cast<int32_t>(workers_.size()));
    resp->set_healthy(static_cast<int32_t>(workers_.size()));
    resp->set_policy("prefix");
    resp->set_prefix_cache_hit_rate(0.5);
    resp->set_requests_total(42);
    r->Finish(auth);
    return r;
  }

 private:
  grpc::Status Auth(grpc::CallbackServerContext* ctx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    last_token_ = BearerOf(ctx);
    return CheckToken(ctx, kAdminToken);
  }
  static grpc::Status NotFound(const std::string& id) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no worker ", id));
  }
  grpc::ServerUnaryReactor* SetState(grpc::CallbackServerContext* ctx, const std::string& id,
                                     v1::WorkerInfo::State state, v1::WorkerInfo* out) {
    auto* r = ctx->DefaultReactor();
    absl::MutexLock lock(&mu_);
    grpc::Status status = Auth(ctx);
    auto it = workers_.find(id);
    if (status.ok() && it == workers_.end()) status = NotFound(id);
    if (status.ok()) {
      it->second.set_state(state);
      *out = it->second;
    }
    r->Finish(status);
    return r;
  }

  absl::Mutex mu_;
  std::map<std::string, v1::WorkerInfo> workers_ ABSL_GUARDED_BY(mu_);
  bool hang_status_ ABSL_GUARDED_BY(mu_) = false;
  int list_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_token_ ABSL_GUARDED_BY(mu_);
};

// Writes a fixed list of messages, then finishes with `status`.
class ScriptedWriter : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  ScriptedWriter(std::vector<v1::GenerateResponse> messages, grpc::Status status)
      : messages_(std::move(messages)), status_(std::move(status)) {
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ < messages_.size()) {
      StartWrite(&messages_[next_++]);
    } else {
      Finish(status_);
    }
  }
  std::vector<v1::GenerateResponse> messages_;
  size_t next_ = 0;
  grpc::Status status_;
};

// An Llm service whose Generate streams "Once", " upon", " a time" (one
// token each) and a final message, or, for the prompt "fail", finishes with
// FINISH_REASON_ERROR.
class FakeLlm final : public v1::Llm::CallbackService {
 public:
  v1::GenerateRequest last_request() {
    absl::MutexLock lock(&mu_);
    return last_request_;
  }

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* ctx, const v1::GenerateRequest* req) override {
    {
      absl::MutexLock lock(&mu_);
      last_request_ = *req;
    }
    const grpc::Status auth = CheckToken(ctx, kApiKey);
    if (!auth.ok()) return new ScriptedWriter({}, auth);
    std::vector<v1::GenerateResponse> out;
    if (req->text() == "fail") {
      v1::GenerateResponse m;
      m.set_finish_reason(v1::FINISH_REASON_ERROR);
      m.set_error_message("the worker crashed");
      out.push_back(m);
    } else {
      int32_t id = 100;
      for (const char* piece : {"Once", " upon", " a time"}) {
        v1::GenerateResponse m;
        m.add_token_ids(id++);
        if (req->return_text()) m.set_text(piece);
        out.push_back(m);
      }
      v1::GenerateResponse last;
      last.set_finish_reason(v1::FINISH_REASON_LENGTH);
      last.mutable_usage()->set_prompt_tokens(5);
      last.mutable_usage()->set_completion_tokens(3);
      last.mutable_usage()->set_cached_prompt_tokens(2);
      last.set_worker_id("w-0");
      out.push_back(last);
    }
    return new ScriptedWriter(std::move(out), grpc::Status::OK);
  }

 private:
  absl::Mutex mu_;
  v1::GenerateRequest last_request_ ABSL_GUARDED_BY(mu_);
};

// A loopback port nothing listens on (bound, then closed).
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

class CliCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder admin_builder;
    admin_builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &admin_port_);
    admin_builder.RegisterService(&admin_);
    admin_server_ = admin_builder.BuildAndStart();
    ASSERT_NE(admin_server_, nullptr);
    grpc::ServerBuilder llm_builder;
    llm_builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &llm_port_);
    llm_builder.RegisterService(&llm_);
    llm_server_ = llm_builder.BuildAndStart();
    ASSERT_NE(llm_server_, nullptr);
  }
  void TearDown() override {
    const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(2);
    if (admin_server_) admin_server_->Shutdown(deadline);
    if (llm_server_) llm_server_->Shutdown(deadline);
  }

  std::string router() const { return absl::StrCat("127.0.0.1:", admin_port_); }
  std::string endpoint() const { return absl::StrCat("127.0.0.1:", llm_port_); }

  // Runs the CLI in-process with the router, endpoint, token and key of the
  // fakes in the environment (arguments override them).
  Result Run(std::vector<std::string> args, const std::string& stdin_text = "") {
    const std::map<std::string, std::string> env = {{"TESSERA_ROUTER", router()},
                                                    {"TESSERA_ADMIN_TOKEN", kAdminToken},
                                                    {"TESSERA_ENDPOINT", endpoint()},
                                                    {"TESSERA_API_KEY", kApiKey}};
    auto lookup = [env](const char* name) -> std::optional<std::string> {
      auto it = env.find(name);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    std::ostringstream out, err;
    std::istringstream in(stdin_text);
    CliIo io{out, err, in};
    io.wait_poll_interval = std::chrono::milliseconds(5);
    Result r;
    r.code = RunCli(args, lookup, io);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  // Runs the built binary; stdout captured, stderr to the test log.
  testing::CommandResult RunBinary(const std::string& args, const std::string& env = "") {
    return testing::RunCommand(absl::StrCat("env ", env, " ", TESSERA_CLI_BINARY, " ", args), 60);
  }

  FakeAdmin admin_;
  FakeLlm llm_;
  int admin_port_ = 0;
  int llm_port_ = 0;
  std::unique_ptr<grpc::Server> admin_server_;
  std::unique_ptr<grpc::Server> llm_server_;
};

TEST_F(CliCommandsTest, WorkersTableSendsTheToken) {
  const Result r = Run({"workers"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ID"));
  EXPECT_THAT(r.out, HasSubstr("IN-FLIGHT"));
  EXPECT_THAT(r.out, HasSubstr("w-0"));
  EXPECT_THAT(r.out, HasSubstr("64/256 (25%)"));
  EXPECT_THAT(r.out, HasSubstr("50%"));
  EXPECT_EQ(admin_.last_token(), kAdminToken);
}

TEST_F(CliCommandsTest, WorkersJson) {
  const Result r = Run({"--json", "workers"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["workers"].size(), 2u);
  EXPECT_EQ(j["workers"][1]["id"], "w-0");
  EXPECT_EQ(j["workers"][1]["in_flight"], 3);
}

TEST_F(CliCommandsTest, MissingOrWrongTokenExits4) {
  Result r = Run({"workers", "--admin-token", "wrong"});
  EXPECT_EQ(r.code, kExitAuth);
  EXPECT_THAT(r.err, HasSubstr("tessera: workers: PERMISSION_DENIED: wrong token"));
  EXPECT_EQ(admin_.last_token(), "wrong");
  // No token at all: the env var is empty, so nothing is sent.
  const std::vector<std::string> no_token = {"status"};
  std::ostringstream out, err;
  std::istringstream in;
  CliIo io{out, err, in};
  const std::string addr = router();
  const int code = RunCli(
      no_token,
      [&addr](const char* name) -> std::optional<std::string> {
        if (std::string(name) == "TESSERA_ROUTER") return addr;
        return std::nullopt;
      },
      io);
  EXPECT_EQ(code, kExitAuth);
  EXPECT_THAT(err.str(), HasSubstr("tessera: status: UNAUTHENTICATED: missing token"));
  EXPECT_EQ(admin_.last_token(), "");
}

TEST_F(CliCommandsTest, StatusLinesAndJson) {
  Result r = Run({"status"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("policy: prefix\n"));
  EXPECT_THAT(r.out, HasSubstr("workers: 2\n"));
  EXPECT_THAT(r.out, HasSubstr("requests_total: 42\n"));
  r = Run({"status", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["policy"], "prefix");
  EXPECT_EQ(j["requests_total"], 42);
}

TEST_F(CliCommandsTest, DrainUndrainAddRemove) {
  Result r = Run({"drain", "w-0"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("draining worker w-0 (3 in flight)"));
  r = Run({"undrain", "w-0", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["worker"]["state"], "healthy");
  r = Run({"add", "10.0.0.9:50051"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("added worker w-2 at 10.0.0.9:50051 (healthy)"));
  r = Run({"--json", "add", "10.0.0.10:50051"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["worker"]["source"], "admin");
  r = Run({"remove", "w-2"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "removed worker w-2\n");
  r = Run({"workers", "--json"});
  ASSERT_EQ(r.code, kExitOk);
  EXPECT_EQ(nlohmann::json::parse(r.out)["workers"].size(), 3u);  // w-0, w-3, stuck-1
}

TEST_F(CliCommandsTest, UnknownIdExits3) {
  for (const char* command : {"drain", "undrain", "remove"}) {
    const Result r = Run({command, "nope"});
    EXPECT_EQ(r.code, kExitNotFound) << command;
    EXPECT_THAT(r.err,
                HasSubstr(absl::StrCat("tessera: ", command, ": NOT_FOUND: no worker nope")));
  }
}

TEST_F(CliCommandsTest, OtherFailuresExit1) {
  const Result r = Run({"add", "no-port"});
  EXPECT_EQ(r.code, kExitCallFailed);
  EXPECT_THAT(r.err, HasSubstr("tessera: add: INVALID_ARGUMENT: address needs a port"));
}

TEST_F(CliCommandsTest, UsageErrorsExit2) {
  Result r = Run({"drain"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("drain needs a worker ID"));
  EXPECT_THAT(r.err, HasSubstr("tessera --help"));
  r = Run({"bogus"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(admin_.list_calls(), 0);
}

TEST_F(CliCommandsTest, HelpExits0) {
  Result r = Run({"--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("Exit codes"));
  r = Run({"generate", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("Usage: tessera generate"));
}

TEST_F(CliCommandsTest, UnreachableRouterExits5) {
  const std::string closed = absl::StrCat("127.0.0.1:", ClosedPort());
  Result r = Run({"workers", "--router", closed, "--timeout", "5"});
  EXPECT_EQ(r.code, kExitUnreachable);
  EXPECT_THAT(r.err, HasSubstr("tessera: workers: UNAVAILABLE"));
  EXPECT_THAT(r.err, HasSubstr(closed));
  r = Run({"generate", "hi", "--endpoint", closed});
  EXPECT_EQ(r.code, kExitUnreachable);
}

TEST_F(CliCommandsTest, DeadlineAfterConnectingExits1) {
  admin_.set_hang_status(true);
  const Result r = Run({"status", "--timeout", "0.3"});
  EXPECT_EQ(r.code, kExitCallFailed);
  EXPECT_THAT(r.err, HasSubstr("tessera: status: DEADLINE_EXCEEDED"));
}

TEST_F(CliCommandsTest, ExitCodeForStatus) {
  using grpc::StatusCode;
  auto code = [](StatusCode c, bool connected) {
    return ExitCodeForStatus(grpc::Status(c, ""), connected);
  };
  EXPECT_EQ(code(StatusCode::OK, true), 0);
  EXPECT_EQ(code(StatusCode::INTERNAL, true), 1);
  EXPECT_EQ(code(StatusCode::NOT_FOUND, true), 3);
  EXPECT_EQ(code(StatusCode::UNAUTHENTICATED, true), 4);
  EXPECT_EQ(code(StatusCode::PERMISSION_DENIED, true), 4);
  EXPECT_EQ(code(StatusCode::UNAVAILABLE, true), 5);
  EXPECT_EQ(code(StatusCode::DEADLINE_EXCEEDED, false), 5);
  EXPECT_EQ(code(StatusCode::DEADLINE_EXCEEDED, true), 1);
}

TEST_F(CliCommandsTest, DrainWaitCompletes) {
  const Result r = Run({"drain", "w-0", "--wait", "--wait-timeout", "30"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("worker w-0 drained"));
  EXPECT_THAT(r.err, HasSubstr("waiting: worker w-0: 3 in flight, 2 running, 1 waiting"));
  // 3 in flight, one fewer per poll: the fourth poll sees 0.
  EXPECT_EQ(admin_.list_calls(), 4);
}

TEST_F(CliCommandsTest, DrainWaitJson) {
  const Result r = Run({"drain", "w-0", "--wait", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["drained"], true);
  EXPECT_EQ(j["worker"]["state"], "draining");
  EXPECT_EQ(j["worker"]["in_flight"], 0);
}

TEST_F(CliCommandsTest, DrainWaitTimesOutExits6) {
  const auto start = std::chrono::steady_clock::now();
  const Result r = Run({"drain", "stuck-1", "--wait", "--wait-timeout", "0.3", "--json"});
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.code, kExitWaitTimedOut);
  EXPECT_THAT(r.err, HasSubstr("--wait timed out"));
  EXPECT_THAT(r.err, HasSubstr("3 in flight"));
  EXPECT_EQ(nlohmann::json::parse(r.out)["drained"], false);
  EXPECT_GE(took, 0.3);
  EXPECT_LT(took, 10.0);
  EXPECT_GE(admin_.list_calls(), 2);
}

TEST_F(CliCommandsTest, GenerateStreamsTextAndReportsUsage) {
  const Result r = Run(
      {"generate", "Tell me a story", "--max-tokens", "3", "--temperature", "0", "--seed", "9"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "Once upon a time");
  EXPECT_THAT(r.err, HasSubstr("finish_reason: length, prompt_tokens: 5, completion_tokens: 3, "
                               "cached_prompt_tokens: 2, worker: w-0"));
  const v1::GenerateRequest req = llm_.last_request();
  EXPECT_EQ(req.text(), "Tell me a story");
  EXPECT_TRUE(req.return_text());
  EXPECT_EQ(req.sampling().max_tokens(), 3);
  ASSERT_TRUE(req.sampling().has_temperature());
  EXPECT_EQ(req.sampling().temperature(), 0.0f);
  EXPECT_EQ(req.sampling().seed(), 9u);
}

TEST_F(CliCommandsTest, GenerateLeavesUnsetSamplingUnset) {
  const Result r = Run({"generate", "hi"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const v1::GenerateRequest req = llm_.last_request();
  EXPECT_FALSE(req.sampling().has_max_tokens());
  EXPECT_FALSE(req.sampling().has_temperature());
  EXPECT_FALSE(req.sampling().has_seed());
}

TEST_F(CliCommandsTest, GeneratePromptFromStdin) {
  const Result r = Run({"generate", "-"}, "a prompt\nof two lines\n");
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(llm_.last_request().text(), "a prompt\nof two lines");
}

TEST_F(CliCommandsTest, GenerateApiKeyRefusedExits4) {
  const Result r = Run({"generate", "hi", "--api-key", "bad"});
  EXPECT_EQ(r.code, kExitAuth);
  EXPECT_THAT(r.err, HasSubstr("tessera: generate: PERMISSION_DENIED: wrong token"));
  EXPECT_EQ(r.out, "");
}

TEST_F(CliCommandsTest, GenerateErrorFinishExits1) {
  const Result r = Run({"generate", "fail"});
  EXPECT_EQ(r.code, kExitCallFailed);
  EXPECT_THAT(r.err, HasSubstr("finish_reason: error"));
  EXPECT_THAT(r.err, HasSubstr("the worker crashed"));
}

// --- the binary, as a script would run it ---

TEST_F(CliCommandsTest, BinaryWorkersWithEnvironment) {
  const auto r = RunBinary(
      "workers", absl::StrCat("TESSERA_ROUTER=", router(), " TESSERA_ADMIN_TOKEN=", kAdminToken));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("w-0"));
  EXPECT_THAT(r.out, HasSubstr("PREFIX HIT"));
}

TEST_F(CliCommandsTest, BinaryExitCodes) {
  const std::string opts = absl::StrCat("--router ", router(), " --admin-token ", kAdminToken);
  EXPECT_EQ(RunBinary("status --json " + opts).exit_code, 0);
  EXPECT_EQ(RunBinary("drain " + opts).exit_code, 2);
  EXPECT_EQ(RunBinary("drain nope " + opts).exit_code, 3);
  EXPECT_EQ(RunBinary(absl::StrCat("workers --router ", router(), " --admin-token x")).exit_code,
            4);
  EXPECT_EQ(RunBinary(absl::StrCat("workers --router 127.0.0.1:", ClosedPort())).exit_code, 5);
  EXPECT_EQ(RunBinary("drain stuck-1 --wait --wait-timeout 0.3 " + opts).exit_code, 6);
  const auto help = RunBinary("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Exit codes"));
}

TEST_F(CliCommandsTest, BinaryStatusJsonParses) {
  const auto r = RunBinary(absl::StrCat("--json --router=", router(), " status"),
                           absl::StrCat("TESSERA_ADMIN_TOKEN=", kAdminToken));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["policy"], "prefix");
}

TEST_F(CliCommandsTest, BinaryDrainWait) {
  const auto r = RunBinary(absl::StrCat("drain w-0 --wait --wait-timeout 30 --router ", router(),
                                        " --admin-token ", kAdminToken));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("worker w-0 drained"));
}

TEST_F(CliCommandsTest, BinaryGenerateStdoutIsExactlyTheText) {
  const auto r = RunBinary(absl::StrCat("generate 'Tell me' --endpoint ", endpoint(), " --api-key ",
                                        kApiKey, " --max-tokens 3"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "Once upon a time");                 // not a terminal: no newline added
  EXPECT_THAT(r.out, Not(HasSubstr("finish_reason")));  // that goes to stderr
}

}  // namespace
}  // namespace tessera::cli

namespace tessera::cli {
namespace {

// The binary's --watch: --count frames, each with its "---" line (stdout is
// not a terminal here); SIGTERM ends an unbounded watch with exit 0.
TEST_F(CliCommandsTest, BinaryWatchCountAndSigterm) {
  const std::string opts = absl::StrCat("--router ", router(), " --admin-token ", kAdminToken);
  auto r = RunBinary("workers --watch --interval 0.05 --count 3 " + opts);
  EXPECT_EQ(r.exit_code, 0);
  size_t frames = 0;
  for (size_t at = r.out.find("--- tessera workers"); at != std::string::npos;
       at = r.out.find("--- tessera workers", at + 1)) {
    ++frames;
  }
  EXPECT_EQ(frames, 3u) << r.out;
  r = testing::RunCommand(absl::StrCat("timeout --preserve-status -s TERM 1 ", TESSERA_CLI_BINARY,
                                       " status --watch --interval 0.1 ", opts),
                          60);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("policy: prefix"));
}

}  // namespace
}  // namespace tessera::cli
