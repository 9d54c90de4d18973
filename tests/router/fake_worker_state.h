// FakeWorker::State: what the fake worker's handlers share with the
// FakeWorker that drives them (tests/router/fake_worker.h). Test-only;
// fields are guarded by State::mu.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/service_type.h"
#include "tessera/v1/llm.pb.h"
#include "tessera/v1/worker.pb.h"
#include "tests/router/fake_reactors.h"
#include "tests/router/fake_worker.h"

namespace tessera::router::testing {

// How every call on a stopped fake ends.
inline grpc::Status Stopped() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake worker stopped");
}

using GenerateWriter = QueuedWriter<v1::GenerateResponse>;
using WatchWriter = QueuedWriter<v1::KvEventBatch>;

struct FakeWorker::State {
  struct Watcher {
    std::weak_ptr<WatchWriter> writer;
    uint64_t next_sequence = 1;  // 0 was the snapshot
    uint64_t skip = 0;
  };

  explicit State(FakeWorkerOptions o) : options(std::move(o)) {}

  const FakeWorkerOptions options;
  mutable absl::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = true;
  v1::LoadReport report ABSL_GUARDED_BY(mu);
  grpc::Status get_load_status ABSL_GUARDED_BY(mu);
  bool get_load_hang ABSL_GUARDED_BY(mu) = false;
  GenerateScript script ABSL_GUARDED_BY(mu);
  absl::flat_hash_set<uint64_t> cached ABSL_GUARDED_BY(mu);
  std::vector<Watcher> watchers ABSL_GUARDED_BY(mu);
  std::vector<std::weak_ptr<GenerateWriter>> generates ABSL_GUARDED_BY(mu);
  std::vector<std::weak_ptr<HangingUnary>> hanging ABSL_GUARDED_BY(mu);
  std::vector<v1::GenerateRequest> requests ABSL_GUARDED_BY(mu);
  int64_t generate_calls ABSL_GUARDED_BY(mu) = 0;
  int64_t get_load_calls ABSL_GUARDED_BY(mu) = 0;
  int64_t watch_calls ABSL_GUARDED_BY(mu) = 0;
  int64_t drain_calls ABSL_GUARDED_BY(mu) = 0;

  // The server (re)built by Serve; services outlive it.
  std::unique_ptr<grpc::Server> server ABSL_GUARDED_BY(mu);
  std::unique_ptr<grpc::Service> worker_service ABSL_GUARDED_BY(mu);
  std::unique_ptr<grpc::Service> llm_service ABSL_GUARDED_BY(mu);

  void ForgetGenerate(GenerateWriter* w) {
    absl::MutexLock lock(&mu);
    std::erase_if(generates, [w](const std::weak_ptr<GenerateWriter>& p) {
      auto s = p.lock();
      return s == nullptr || s.get() == w;
    });
  }
  void ForgetWatcher(WatchWriter* w) {
    absl::MutexLock lock(&mu);
    std::erase_if(watchers, [w](const Watcher& x) {
      auto s = x.writer.lock();
      return s == nullptr || s.get() == w;
    });
  }
};

}  // namespace tessera::router::testing
