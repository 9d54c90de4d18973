// Registration against an in-process fake Registry: registers, heartbeats,
// registers again when the router forgets the worker, and retries while the
// router is down.
#include "worker/server/registration.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tessera/v1/admin.grpc.pb.h"

namespace tessera {
namespace {

class FakeRegistry final : public v1::Registry::CallbackService {
 public:
  grpc::ServerUnaryReactor* RegisterWorker(grpc::CallbackServerContext* ctx,
                                           const v1::RegisterWorkerRequest* req,
                                           v1::RegisterWorkerResponse* resp) override {
    {
      absl::MutexLock lock(&mu_);
      registers_++;
      known_ = true;
      last_address_ = req->address();
      last_id_ = req->worker_id();
      Record(*ctx);
      register_incarnation_ = req->incarnation();
    }
    resp->set_worker_id(req->worker_id());
    resp->set_heartbeat_interval_ms(20);
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                      const v1::HeartbeatRequest* req,
                                      v1::HeartbeatResponse* resp) override {
    {
      absl::MutexLock lock(&mu_);
      heartbeats_++;
      Record(*ctx);
      heartbeat_incarnation_ = req->incarnation();
      resp->set_known(known_);
    }
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  void Forget() {
    absl::MutexLock lock(&mu_);
    known_ = false;
  }
  // Waits (bounded) until registers >= r and heartbeats >= h.
  bool WaitFor(int r, int h) {
    absl::MutexLock lock(&mu_);
    auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return registers_ >= r && heartbeats_ >= h;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&cond), absl::Seconds(30));
  }
  int registers() {
    absl::MutexLock lock(&mu_);
    return registers_;
  }
  int heartbeats() {
    absl::MutexLock lock(&mu_);
    return heartbeats_;
  }
  std::string last_address() {
    absl::MutexLock lock(&mu_);
    return last_address_;
  }
  // The cluster tokens the calls carried ("" for a call without one).
  std::vector<std::string> tokens() {
    absl::MutexLock lock(&mu_);
    return tokens_;
  }
  std::string register_incarnation() {
    absl::MutexLock lock(&mu_);
    return register_incarnation_;
  }
  std::string heartbeat_incarnation() {
    absl::MutexLock lock(&mu_);
    return heartbeat_incarnation_;
  }

 private:
  void Record(const grpc::CallbackServerContext& ctx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const auto& md = ctx.client_metadata();
    const auto it = md.find("x-tessera-cluster-token");
    tokens_.push_back(it == md.end() ? "" : std::string(it->second.data(), it->second.size()));
  }

  absl::Mutex mu_;
  int registers_ ABSL_GUARDED_BY(mu_) = 0;
  int heartbeats_ ABSL_GUARDED_BY(mu_) = 0;
  bool known_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_address_ ABSL_GUARDED_BY(mu_);
  std::string last_id_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> tokens_ ABSL_GUARDED_BY(mu_);
  std::string register_incarnation_ ABSL_GUARDED_BY(mu_);
  std::string heartbeat_incarnation_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<grpc::Server> StartRegistry(FakeRegistry* service, int* port,
                                            const std::string& addr = "127.0.0.1:0") {
  grpc::ServerBuilder b;
  b.AddListeningPort(addr, grpc::InsecureServerCredentials(), port);
  b.RegisterService(service);
  return b.BuildAndStart();
}

TEST(RegistrationTest, RegistersHeartbeatsAndReregistersWhenForgotten) {
  FakeRegistry registry;
  int port = 0;
  auto server = StartRegistry(&registry, &port);
  ASSERT_NE(server, nullptr);
  Registration::Options o;
  o.router = absl::StrCat("127.0.0.1:", port);
  o.worker_id = "w1";
  o.address = "10.0.0.1:50051";
  o.cluster.token = "secret";
  o.incarnation = Registration::NewIncarnation();
  Registration reg(o);
  reg.Start();
  ASSERT_TRUE(registry.WaitFor(1, 3));
  EXPECT_EQ(registry.last_address(), "10.0.0.1:50051");
  // The incarnation travels with the registration and every heartbeat.
  EXPECT_EQ(registry.register_incarnation(), o.incarnation);
  EXPECT_EQ(registry.heartbeat_incarnation(), o.incarnation);
  registry.Forget();
  ASSERT_TRUE(registry.WaitFor(2, registry.heartbeats() + 1));
  // Every RegisterWorker and Heartbeat carried the cluster token.
  const std::vector<std::string> tokens = registry.tokens();
  ASSERT_GE(tokens.size(), 5u);
  for (const std::string& t : tokens) EXPECT_EQ(t, "secret");
  reg.Stop();
  server->Shutdown();
}

TEST(RegistrationTest, IncarnationsAre128RandomBitsInHex) {
  const std::string a = Registration::NewIncarnation();
  const std::string b = Registration::NewIncarnation();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
  EXPECT_NE(a, b);
}

TEST(RegistrationTest, RetriesUntilTheRouterComesUp) {
  // Reserve a port, then start nothing there for a while.
  FakeRegistry registry;
  int port = 0;
  auto probe = StartRegistry(&registry, &port);
  ASSERT_NE(probe, nullptr);
  probe->Shutdown();
  probe.reset();
  Registration::Options o;
  o.router = absl::StrCat("127.0.0.1:", port);
  o.worker_id = "w2";
  o.address = "a:1";
  o.rpc_timeout = std::chrono::milliseconds(200);
  Registration reg(o);
  reg.Start();
  EXPECT_FALSE(reg.registered());
  int again = 0;
  auto server = StartRegistry(&registry, &again, absl::StrCat("127.0.0.1:", port));
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(registry.WaitFor(1, 1));
  reg.Stop();
  server->Shutdown();
}

}  // namespace
}  // namespace tessera
