// tessera-bench's options: what to call, how requests arrive, which workload,
// what to report. Filled once from the command line (OptionsFromFlags) and
// read-only afterwards, so any thread may read it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/api/cluster_auth.h"

namespace tessera::bench {

using Clock = std::chrono::steady_clock;

inline double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

enum class Workload { kRandom, kSharedPrefix, kMultiTurn };

// How calls reach the server.
enum class Api {
  kGrpc,    // tessera.v1.Worker.Generate or tessera.v1.Llm.Generate (--service)
  kOpenAi,  // streaming POST /v1/completions on the router's HTTP port
};

struct Options {
  Api api = Api::kGrpc;
  std::string target;
  bool worker_service = true;  // gRPC only: Worker (true) or Llm (false)
  std::string api_key;
  // --service worker: the cluster token (--cluster-token) and mTLS (--tls-*)
  // a worker's port requires.
  api::ClusterCredentials cluster;
  int channels = 1;      // gRPC only
  int http_threads = 2;  // openai only: threads running the io_context
  std::string model;     // openai only: the request's "model" (may be empty)
  double rate = 0;       // 0: closed loop
  bool poisson = false;
  int concurrency = 8;   // 0: no cap
  int64_t requests = 0;  // 0: no limit (duration only)
  double duration_s = 0;
  Workload workload = Workload::kRandom;
  std::string workload_name;
  int prompt_len = 0, prompt_len_max = 0;
  int max_tokens = 0, max_tokens_max = 0;
  int groups = 0, prefix_len = 0, suffix_len = 0;
  int sessions = 0, turns = 0, turn_len = 0;
  uint64_t seed = 0;
  int vocab_size = 0;
  int timeout_s = 0;
  // >= 1: the client closes each call after this many output chunks (a
  // disconnect storm); 0: off.
  int disconnect_after_tokens = 0;
  // > 0: every request samples at this temperature with its own seed (see
  // Planned::seed); 0: greedy.
  float temperature = 0;
  std::string record;  // gRPC: write every call (request and tokens) as JSONL here
  std::string replay;  // gRPC: re-send the OK calls of this recording, compare tokens
  std::string json;
  std::string admin;
  std::string admin_token;
};

// Reads and validates the flags (defined in bench_options.cc); an
// InvalidArgument names the flag at fault.
absl::StatusOr<Options> OptionsFromFlags();

// One-line descriptions of the workload and of the arrivals, for the report.
std::string WorkloadDescription(const Options& o);
std::string ArrivalDescription(const Options& o);

// "worker", "llm" (gRPC) or "openai" (HTTP): the service the calls use.
std::string ServiceName(const Options& o);

}  // namespace tessera::bench
