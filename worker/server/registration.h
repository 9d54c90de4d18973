// Keeps a worker registered with a router (--router): RegisterWorker, then a
// Heartbeat every interval; registers again when the router answers
// known=false or after it was unreachable; retries with exponential backoff
// (250 ms .. 10 s) while the router is down or refuses the cluster
// credential. Runs on its own thread and never blocks serving.
//
// Thread-safe: Start/Stop from one owner thread; registered() from any.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/api/cluster_auth.h"

namespace tessera {

class Registration {
 public:
  struct Options {
    std::string router;     // host:port of the router's client port
    std::string worker_id;  // sent in RegisterWorker / Heartbeat
    // Sent in RegisterWorker / Heartbeat: this process's identity at the
    // router (NewIncarnation()); keep it secret.
    std::string incarnation;
    std::string address;  // where the router reaches this worker
    // The cluster token (sent on every call as x-tessera-cluster-token) and
    // mTLS credentials (cluster_channel.h).
    api::ClusterCredentials cluster;
    std::chrono::milliseconds heartbeat_interval{1000};  // unless the router says otherwise
    std::chrono::milliseconds rpc_timeout{2000};
  };

  explicit Registration(Options options) : options_(std::move(options)) {}
  // 128 random bits as 32 hex digits, from a generator seeded by the OS:
  // a worker process picks one at start.
  static std::string NewIncarnation();
  ~Registration() { Stop(); }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

  void Start();
  // Ends the thread (within one RPC timeout). Idempotent.
  void Stop();
  // Whether the last Register/Heartbeat succeeded with the router knowing us.
  bool registered() const;

 private:
  void Run();
  // Waits `d` or until Stop(); true when stopping.
  bool WaitOrStop(std::chrono::milliseconds d);

  const Options options_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tessera
