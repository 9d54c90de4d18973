// tessera-bench over gRPC: streaming Worker.Generate / Llm.Generate calls on
// gRPC's callback API (one reactor per call; gRPC's threads timestamp the
// stream messages as they arrive), and the prefix-cache counters read from a
// router's admin port (GetClusterStatus) or a worker (GetLoad).
// Thread-safe as bench_load.h's Transport says.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/bench_load.h"
#include "bench/bench_options.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/admin.grpc.pb.h"
#include "tessera/v1/worker.grpc.pb.h"

namespace tessera::bench {

// The gRPC target for --target: as given, or for several comma-separated
// IPV4:PORT addresses (several routers) gRPC's "ipv4:A:P,B:Q" list;
// InvalidArgument for a list with a name or no port in it.
absl::StatusOr<std::string> GrpcTarget(const std::string& target);

// --channels channels to --target, each its own TCP connection; fails when
// one does not connect within 30 s. Several addresses: each channel spreads
// its calls over them (round robin) and retries a call that got UNAVAILABLE
// before any response on another.
absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> MakeChannels(const Options& o);

// The calls of --api grpc, spread round robin over `channels`.
std::unique_ptr<Transport> MakeGrpcTransport(const Options& o,
                                             std::vector<std::shared_ptr<grpc::Channel>> channels);

struct PrefixCounters {
  int64_t queried = 0;
  int64_t hit = 0;
  bool operator==(const PrefixCounters&) const = default;
};

// Reads the prefix-cache counters: the router's GetClusterStatus with
// --admin, else the target's Worker.GetLoad when the target is a gRPC worker;
// disabled when neither applies. Not thread-safe.
class PrefixCounterSource {
 public:
  // `target_channel` may be null (the target is not a gRPC server).
  PrefixCounterSource(const Options& o, std::shared_ptr<grpc::Channel> target_channel);

  bool enabled() const { return admin_ != nullptr || worker_ != nullptr; }
  const std::string& name() const { return name_; }

  // nullopt when disabled, when the target turns out not to be a worker, or
  // when the call failed (logged to stderr).
  std::optional<PrefixCounters> Read();

  // After the run. A worker's counters are current; the router's come from
  // its periodic polls of the workers, so read until two reads 0.6 s apart
  // agree (at most ~5 s).
  std::optional<PrefixCounters> ReadSettled();

 private:
  const Options& o_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<v1::Worker::Stub> worker_;
  std::string name_;
};

}  // namespace tessera::bench
