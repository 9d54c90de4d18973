#include "worker/server/registration.h"

#include <algorithm>
#include <memory>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/api/cluster_channel.h"
#include "common/logging.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/admin.grpc.pb.h"

namespace tessera {

std::string Registration::NewIncarnation() {
  absl::BitGen gen;  // seeded from the OS's entropy
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

void Registration::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Registration::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool Registration::registered() const {
  absl::MutexLock lock(&mu_);
  return registered_;
}

bool Registration::WaitOrStop(std::chrono::milliseconds d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::FromChrono(d));
  return stop_;
}

void Registration::Run() {
  std::shared_ptr<grpc::Channel> channel =
      api::CreateClusterChannel(options_.router, options_.cluster);
  std::unique_ptr<v1::Registry::Stub> stub = v1::Registry::NewStub(channel);
  const std::chrono::milliseconds min_backoff{250}, max_backoff{10000};
  std::chrono::milliseconds backoff = min_backoff;
  std::chrono::milliseconds interval = options_.heartbeat_interval;
  bool registered = false;
  bool warned = false;
  auto prepare = [&](grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + options_.rpc_timeout);
  };
  while (true) {
    std::chrono::milliseconds wait;
    if (!registered) {
      grpc::ClientContext ctx;
      prepare(ctx);
      v1::RegisterWorkerRequest req;
      req.set_address(options_.address);
      req.set_worker_id(options_.worker_id);
      req.set_incarnation(options_.incarnation);
      v1::RegisterWorkerResponse resp;
      const grpc::Status s = stub->RegisterWorker(&ctx, req, &resp);
      if (s.ok()) {
        registered = true;
        warned = false;
        backoff = min_backoff;
        if (resp.heartbeat_interval_ms() > 0) {
          interval = std::chrono::milliseconds(resp.heartbeat_interval_ms());
        }
        spdlog::info("registered with router {} as {} ({}), heartbeat every {} ms", options_.router,
                     resp.worker_id().empty() ? options_.worker_id : resp.worker_id(),
                     options_.address, interval.count());
        wait = interval;
      } else {
        if (!warned) {
          spdlog::warn("registering with router {} failed ({}: {}); retrying with backoff",
                       options_.router, static_cast<int>(s.error_code()), s.error_message());
          warned = true;
        }
        wait = backoff;
        backoff = std::min(backoff * 2, max_backoff);
      }
    } else {
      grpc::ClientContext ctx;
      prepare(ctx);
      v1::HeartbeatRequest req;
      req.set_worker_id(options_.worker_id);
      req.set_incarnation(options_.incarnation);
      v1::HeartbeatResponse resp;
      const grpc::Status s = stub->Heartbeat(&ctx, req, &resp);
      if (s.ok() && resp.known()) {
        wait = interval;
      } else if (s.ok()) {
        spdlog::info("router {} forgot this worker; registering again", options_.router);
        registered = false;
        wait = std::chrono::milliseconds(0);
      } else {
        spdlog::warn("heartbeat to router {} failed ({}: {}); registering again", options_.router,
                     static_cast<int>(s.error_code()), s.error_message());
        registered = false;
        warned = true;
        wait = backoff;
        backoff = std::min(backoff * 2, max_backoff);
      }
    }
    {
      absl::MutexLock lock(&mu_);
      registered_ = registered;
    }
    if (WaitOrStop(wait)) return;
  }
}

}  // namespace tessera
