// dns:/// worker discovery: `--workers dns:///NAME:PORT` (e.g. a Kubernetes
// headless Service) is resolved every `refresh` and the pool's DNS workers
// are made equal to the resolved addresses (WorkerPool::SyncSource): new
// addresses join, vanished ones are drained and then removed.
//
// A failed resolution keeps the last known set (a DNS outage must not empty
// the pool). The resolver is injectable so tests run on loopback with no DNS.
// Thread-safe; owns one refresh thread between Start() and destruction.
#pragma once

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "router/worker_pool.h"

namespace tessera::router {

struct DnsTarget {
  std::string host;
  int port = 0;
};

// True for "dns:///..." (also "dns:" + "//authority/..." forms are refused by
// ParseDnsTarget with a message).
bool IsDnsTarget(absl::string_view target);
// "dns:///NAME:PORT" -> {NAME, PORT}; INVALID_ARGUMENT naming the expected form.
absl::StatusOr<DnsTarget> ParseDnsTarget(absl::string_view target);

// Resolves host to "ip:port" strings (IPv6 as "[ip]:port"), sorted, unique.
using Resolver = std::function<absl::StatusOr<std::vector<std::string>>(const DnsTarget&)>;
// getaddrinfo-based resolver (A and AAAA records).
Resolver SystemResolver();

class DnsDiscovery {
 public:
  DnsDiscovery(WorkerPool* pool, DnsTarget target, absl::Duration refresh,
               Resolver resolver = SystemResolver(),
               absl::Duration drain_grace = absl::Seconds(60));
  ~DnsDiscovery();  // stops and joins the refresh thread
  DnsDiscovery(const DnsDiscovery&) = delete;
  DnsDiscovery& operator=(const DnsDiscovery&) = delete;

  // Resolves once now (so the pool is populated before serving), then every
  // `refresh` on a background thread. Returns the first resolution's error,
  // if any (the thread keeps trying).
  absl::Status Start();
  // Resolves and syncs once, now (tests; also used by the thread).
  absl::Status RefreshNow();

 private:
  void Loop();

  WorkerPool* pool_;
  const DnsTarget target_;
  const absl::Duration refresh_;
  const Resolver resolver_;
  const absl::Duration drain_grace_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tessera::router
