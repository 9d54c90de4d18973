// The tessera CLI's test fixture: in-process fake Admin and Llm services
// (callback API, real loopback channel) that check the admin token and API
// key, and CliCommandsTest, which runs the CLI in-process (Run) or as the
// built binary (RunBinary, needs TESSERA_CLI_BINARY) against them.
// Header-only; for tests/router/cli_*_test.cc.
#pragma once

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
#include "router/cli/cli_commands.h"
#include "tessera/v1/admin.grpc.pb.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tests/testing/subprocess.h"

namespace tessera::cli {

inline constexpr char kAdminToken[] = "admin-s3cret";
inline constexpr char kApiKey[] = "api-k3y";

// The bearer token of a call, "" when none was sent.
inline std::string BearerOf(grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return "";
  const std::string value(it->second.data(), it->second.size());
  return value.rfind("Bearer ", 0) == 0 ? value.substr(7) : "<malformed>";
}

// Missing token: UNAUTHENTICATED; wrong one: PERMISSION_DENIED.
inline grpc::Status CheckToken(grpc::CallbackServerContext* ctx, const std::string& want) {
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
inline int ClosedPort() {
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

}  // namespace tessera::cli
