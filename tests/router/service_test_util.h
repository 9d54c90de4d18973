// Test fixture for the router's services: fake workers (tests/router/
// fake_worker.h) and an in-process RouterServer on free loopback ports, with
// stubs for its client and admin ports and small helpers. Header-only; tests.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "router/router_server.h"
#include "tessera/v1/admin.grpc.pb.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tests/router/fake_worker.h"

namespace tessera::router::testing {

// Polls `pred` until it holds or `timeout` passes.
inline bool Eventually(const std::function<bool()>& pred,
                       absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return pred();
}

inline std::chrono::system_clock::time_point In(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

struct Stream {
  std::vector<v1::GenerateResponse> messages;
  grpc::Status status;
  std::vector<int32_t> tokens() const {
    std::vector<int32_t> t;
    for (const auto& m : messages) t.insert(t.end(), m.token_ids().begin(), m.token_ids().end());
    return t;
  }
};

// grpc.health.v1.Health/Check for `service` ("" = the server): 1 SERVING,
// 2 NOT_SERVING, 0 UNKNOWN; -1 when the call failed. (No health proto
// headers here: the messages are encoded by hand: field 1, a string / enum.)
inline int CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                       const std::string& service = "") {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(5)));
  std::string encoded;
  if (!service.empty()) {
    encoded.push_back(0x0a);
    encoded.push_back(static_cast<char>(service.size()));
    encoded += service;
  }
  grpc::Slice slice(encoded);
  grpc::ByteBuffer request(&slice, 1);
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
  if (!status.ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes.size() >= 2 && bytes[0] == 0x08 ? static_cast<unsigned char>(bytes[1]) : 0;
}

inline v1::GenerateRequest IdsRequest(std::vector<int32_t> ids, int max_tokens = 8) {
  v1::GenerateRequest r;
  for (int32_t id : ids) r.mutable_token_ids()->add_ids(id);
  r.mutable_sampling()->set_max_tokens(max_tokens);
  return r;
}

class RouterServiceTest : public ::testing::Test {
 protected:
  // Options for a fast test router: loopback, free ports, quick polls and
  // retries, the given policy.
  static RouterServerOptions FastOptions(const std::string& policy = "round_robin") {
    RouterServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.admin_host = "127.0.0.1";
    o.admin_port = 0;
    o.policy = policy;
    o.pool.health_interval = absl::Milliseconds(50);
    o.pool.health_timeout = absl::Milliseconds(500);
    o.relay.retry_backoff = absl::Milliseconds(5);
    o.request_id_prefix = "rt";
    return o;
  }

  // Starts `n` fake workers "w0".."w<n-1>".
  void StartWorkers(int n, FakeWorkerOptions base = {}) {
    for (int i = 0; i < n; ++i) {
      FakeWorkerOptions o = base;
      o.worker_id = absl::StrCat("w", workers_.size());
      workers_.push_back(std::make_unique<FakeWorker>(o));
    }
  }

  // Starts the router over every fake worker (as --workers) and waits until
  // each is in rotation and the model is known.
  void StartRouter(RouterServerOptions o = FastOptions()) {
    for (const auto& w : workers_) o.workers.push_back(w->address());
    absl::StatusOr<std::unique_ptr<RouterServer>> r = RouterServer::Start(std::move(o));
    ASSERT_TRUE(r.ok()) << r.status();
    router_ = std::move(*r);
    for (const auto& w : workers_) {
      ASSERT_TRUE(router_->pool().WaitEligible(w->options().worker_id, absl::Seconds(10)))
          << w->options().worker_id << " never became eligible";
    }
    if (!workers_.empty()) {
      ASSERT_TRUE(Eventually([&] { return router_->pool().model_info().has_value(); }));
    }
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", router_->port()),
                                   grpc::InsecureChannelCredentials());
    admin_channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", router_->admin_port()),
                                         grpc::InsecureChannelCredentials());
    llm_ = v1::Llm::NewStub(channel_);
    registry_ = v1::Registry::NewStub(channel_);
    admin_ = v1::Admin::NewStub(admin_channel_);
  }

  void TearDown() override {
    if (router_) router_->Shutdown(absl::Seconds(1));
    router_.reset();
    workers_.clear();
  }

  // Runs Generate to the end. `setup` may add metadata or a deadline (the
  // default deadline is 10 s).
  Stream Generate(const v1::GenerateRequest& request,
                  const std::function<void(grpc::ClientContext&)>& setup = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(10)));
    if (setup) setup(ctx);
    auto reader = llm_->Generate(&ctx, request);
    Stream s;
    v1::GenerateResponse m;
    while (reader->Read(&m)) s.messages.push_back(m);
    s.status = reader->Finish();
    return s;
  }

  int64_t TotalGenerateCalls() const {
    int64_t n = 0;
    for (const auto& w : workers_) n += w->generate_calls();
    return n;
  }

  std::vector<std::unique_ptr<FakeWorker>> workers_;
  std::unique_ptr<RouterServer> router_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<grpc::Channel> admin_channel_;
  std::unique_ptr<v1::Llm::Stub> llm_;
  std::unique_ptr<v1::Registry::Stub> registry_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

}  // namespace tessera::router::testing
