// tessera-bench: a load generator for Tessera. Over gRPC (--api grpc, the
// default) it calls Worker.Generate (a worker's leader, --service worker) or
// Llm.Generate (tessera-router or a worker, --service llm); over the router's
// OpenAI-compatible HTTP API (--api openai) it makes streaming
// POST /v1/completions calls (bench/openai_calls.h says what they measure).
// Prompts are token ids in [3, --vocab-size), so no tokenizer is involved;
// every request has ignore_eos, so it produces exactly its max_tokens; it is
// greedy, or (--temperature T) samples with a seed of its own.
//
// --record FILE writes every call (request and output token ids) as JSONL;
// --replay FILE sends the OK calls of such a file again and compares the
// outputs token for token (bench/chaos.sh: did any stream have a seam?).
//
// Arrivals (when requests are sent):
//   closed loop (default)  --concurrency streams kept busy (default 8)
//   --rate R               Poisson arrivals, R requests/s on average
//   --fixed-rate R         one request every 1/R s
// With a rate, --concurrency caps the requests in flight (default: no cap); an
// arrival that finds the cap reached waits for a free slot (its wait shows as
// "send lag"). The run ends after --requests N requests or --duration S
// seconds of arrivals, whichever comes first (default 64 requests); requests
// in flight then finish.
//
// Workloads:
//   random         prompt lengths uniform in [--prompt-len, --prompt-len-max]
//   shared-prefix  --groups G shared system prompts of --prefix-len tokens;
//                  each request = a random group's prefix + --suffix-len random
//                  tokens (the prefix cache's and prefix-aware placement's case)
//   multi-turn     --sessions S conversations; each turn's prompt = the previous
//                  prompt + its output + --turn-len new user tokens, for
//                  --turns turns (then the session starts a new conversation);
//                  a session has one turn in flight at a time
// Output lengths are uniform in [--max-tokens, --max-tokens-max]. Over
// --api openai the API returns text, not token ids, so a multi-turn history
// grows by the user turns only (each prompt is the previous prompt + new
// user tokens).
//
// Report (stdout; with --json - the table goes to stderr and stdout gets one
// JSON document; --json FILE writes it there):
//   - completed / failed requests, failures by category (gRPC status code;
//     over HTTP: HTTP_<status>, SSE_ERROR, NO_FINISH, connection errors);
//     with --disconnect-after-tokens, the calls the client hung up on;
//   - requests/s and output tokens/s over the wall time;
//   - latency p50/p90/p99/mean/max in ms, from the moment a call is sent:
//     TTFT, inter-token, end-to-end; with a rate, "send lag" (how late sends
//     were against the arrival schedule); when the final message carries the
//     worker's Timings, "server TTFT" (arrival at the worker to its first
//     token) and "TTFT outside" (TTFT - server TTFT per request: the time
//     outside the worker, in the network, gRPC and any router in between);
//   - the prefix-cache hit rate over the run: from the responses' usage
//     (cached_prompt_tokens / prompt_tokens) and, with --admin ADDR (the
//     router's admin port) or when the target is a worker, from the server's
//     counters (delta of GetClusterStatus / GetLoad prefix_cache_hit_tokens /
//     prefix_cache_queried_tokens before and after).
//
// One dispatcher thread sends (bench_load.h); the calls run on gRPC's callback
// API (grpc_calls.h) or on Boost.Beast with one connection per call
// (openai_calls.h), whose threads timestamp the stream messages as they
// arrive, so one process sustains thousands of requests/s and streams.
// Report: bench_report.h; flags: bench_options.cc. Exits 1 when any call
// failed (or the target is unreachable), 2 on a usage error.
#include <sys/resource.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/bench_load.h"
#include "bench/bench_options.h"
#include "bench/bench_report.h"
#include "bench/grpc_calls.h"
#include "bench/openai_calls.h"
#include "bench/recording.h"
#include "common/cli.h"
#include "common/grpc/library_scope.h"

namespace tessera::bench {
namespace {

// Thousands of concurrent HTTP streams need as many sockets: raise the soft
// limit on open files to the hard one.
void RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) std::perror("tessera-bench: setrlimit(RLIMIT_NOFILE)");
  }
}

int Run() {
  absl::StatusOr<Options> parsed = OptionsFromFlags();
  if (!parsed.ok()) {
    std::fprintf(stderr, "tessera-bench: %s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  const Options& o = *parsed;
  RaiseFileLimit();

  std::unique_ptr<Transport> transport;
  std::shared_ptr<grpc::Channel> target_channel;  // gRPC only: for the worker's counters
  if (o.api == Api::kGrpc) {
    absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels = MakeChannels(o);
    if (!channels.ok()) {
      std::fprintf(stderr, "tessera-bench: %s\n", std::string(channels.status().message()).c_str());
      return 1;
    }
    target_channel = (*channels)[0];
    transport = MakeGrpcTransport(o, *std::move(channels));
  } else {
    absl::StatusOr<std::unique_ptr<Transport>> http = MakeOpenAiTransport(o);
    if (!http.ok()) {
      std::fprintf(stderr, "tessera-bench: %s\n", std::string(http.status().message()).c_str());
      return 1;
    }
    transport = *std::move(http);
  }

  PrefixCounterSource counters(o, target_channel);
  std::optional<PrefixCounters> before;
  if (counters.enabled()) before = counters.Read();

  // --replay: the recorded calls instead of a workload, each output checked.
  std::optional<Recording> recording;
  std::optional<ReplayCheck> replay;
  if (!o.replay.empty()) {
    absl::StatusOr<Recording> read = ReadRecording(o.replay);
    if (!read.ok()) {
      std::fprintf(stderr, "tessera-bench: %s\n", std::string(read.status().message()).c_str());
      return 2;
    }
    recording = *std::move(read);
    replay.emplace(*recording);
  }
  std::unique_ptr<Recorder> recorder;
  if (!o.record.empty()) {
    absl::StatusOr<std::unique_ptr<Recorder>> opened = Recorder::Open(o.record);
    if (!opened.ok()) {
      std::fprintf(stderr, "tessera-bench: %s\n", std::string(opened.status().message()).c_str());
      return 2;
    }
    recorder = *std::move(opened);
  }
  Driver::Observer observer;
  if (recorder != nullptr || replay.has_value()) {
    observer = [&](const Planned& plan, const CallRecord& record,
                   const std::vector<int32_t>& output) {
      if (recorder != nullptr) recorder->Write(plan, record, output);
      if (replay.has_value()) replay->Add(plan, record, output);
    };
  }

  double wall_s = 0;
  std::vector<CallRecord> records;
  Options run = o;  // a replay sends the recorded calls, closed loop
  {
    std::optional<std::vector<Planned>> fixed;
    if (recording.has_value()) {
      fixed = recording->calls;
      run.requests = static_cast<int64_t>(recording->calls.size());
      run.duration_s = 0;
      run.rate = 0;
      if (run.concurrency == 0) run.concurrency = 8;
      std::fprintf(stderr, "tessera-bench: replaying %zu calls of %s (%lld failed ones skipped)\n",
                   recording->calls.size(), o.replay.c_str(),
                   static_cast<long long>(recording->skipped));
    }
    if (!fixed.has_value() || !fixed->empty()) {
      Driver driver(run, transport.get(), observer, std::move(fixed));
      records = driver.Run(&wall_s);
    }
  }
  transport.reset();  // every call has reported
  bool exact = true;
  if (replay.has_value()) exact = replay->Print(stdout);
  if (recorder != nullptr) {
    if (absl::Status closed = recorder->Close(); !closed.ok()) {
      std::fprintf(stderr, "tessera-bench: %s\n", std::string(closed.message()).c_str());
      return 1;
    }
  }

  std::optional<PrefixDelta> delta;
  if (before.has_value()) {
    if (std::optional<PrefixCounters> after = counters.ReadSettled(); after.has_value()) {
      delta = PrefixDelta{{after->queried - before->queried, after->hit - before->hit},
                          counters.name()};
    }
  }
  const int code = Report(run, records, wall_s, delta);
  return code != 0 ? code : (exact ? 0 : 1);
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  tessera::ParseCommandLine(
      argc, argv,
      "load generator for tessera-worker and tessera-router, over gRPC or the\n"
      "router's OpenAI HTTP API (bench/tessera_bench.cc says more).\n"
      "  tessera-bench --target HOST:PORT [--api grpc --service worker|llm | --api openai]\n"
      "      [--rate R | --fixed-rate R] [--concurrency N] [--requests N | --duration S]\n"
      "      [--workload random|shared-prefix|multi-turn] [--prompt-len L] [--max-tokens T]\n"
      "      [--temperature T] [--record FILE | --replay FILE]\n"
      "      [--disconnect-after-tokens K] [--json FILE|-] [--admin ADDR --admin-token TOKEN]");
  const tessera::rpc::GrpcLibraryScope grpc;  // shuts gRPC down here, after Run's objects
  return tessera::bench::Run();
}
