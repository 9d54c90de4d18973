// Engine loop micro-benchmark: the cost of the worker's metrics on the engine thread. One
// iteration submits kRequests greedy ignore_eos requests of kMaxTokens to an EngineLoop over
// an in-process dummy tiny replica (TP=1, one CPU thread) and waits for all of them; arg 1
// records into WorkerMetrics (as tessera-worker always does), arg 0 records nothing. Run with
// random interleaving so drift on a shared machine hits both alike:
//   build/bench/engine_loop_bench --benchmark_repetitions=10 \
//     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "common/metrics/metrics.h"
#include "worker/comm/make_communicator.h"
#include "worker/replica.h"
#include "worker/server/engine_loop.h"
#include "worker/server/worker_metrics.h"

namespace tessera {
namespace {

constexpr int kRequests = 32;
constexpr int kMaxTokens = 32;

// Counts finished requests; Wait() blocks (no spinning next to the engine thread).
class Done {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    ++n_;
  }
  void Wait(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return n_ >= n; };
    mu_.Await(absl::Condition(&reached));
    n_ = 0;
  }

 private:
  absl::Mutex mu_;
  int n_ ABSL_GUARDED_BY(mu_) = 0;
};

class CountingSink : public RequestSink {
 public:
  explicit CountingSink(Done& done) : done_(done) {}
  void OnScheduled() override {}
  bool OnOutput(RequestOutput o) override {
    if (o.finished()) done_.Add();
    return false;
  }
  void OnError(absl::Status) override { done_.Add(); }

 private:
  Done& done_;
};

std::unique_ptr<Replica> MakeTiny() {
  ReplicaOptions o;
  o.dummy_preset = "tiny";
  o.dummy_seed = 7;
  o.cache.block_size = 16;
  o.cache.num_blocks = 512;
  o.threads = 1;
  auto r = BuildReplica(o, MakeSingleProcessCommunicator());
  return r.ok() ? std::move(*r) : nullptr;
}

void BM_EngineLoopWorkload(benchmark::State& state) {
  const bool with_metrics = state.range(0) != 0;
  std::unique_ptr<Replica> replica = MakeTiny();
  if (replica == nullptr) {
    state.SkipWithError("cannot build the dummy tiny replica");
    return;
  }
  metrics::Registry registry;
  WorkerMetrics worker_metrics(
      registry, {.model_name = "dummy-tiny", .max_model_len = replica->sched.max_model_len});
  EngineLoopOptions options;
  options.metrics = with_metrics ? &worker_metrics : nullptr;
  options.log_stats_interval = std::chrono::milliseconds(0);
  EngineLoop loop(*replica->engine, *replica->comm, nullptr, options);
  loop.Start();
  int64_t round = 0;
  Done done;
  for (auto _ : state) {
    for (int i = 0; i < kRequests; ++i) {
      EngineRequest r;
      r.request_id = "r" + std::to_string(round) + "-" + std::to_string(i);
      r.prompt_token_ids = {1, 40, 41, 42, static_cast<int32_t>(i % 500 + 5)};
      r.params.temperature = 0.0f;
      r.params.max_tokens = kMaxTokens;
      r.params.ignore_eos = true;
      (void)loop.Submit(std::move(r), std::make_shared<CountingSink>(done));
    }
    done.Wait(kRequests);
    ++round;
  }
  state.SetItemsProcessed(state.iterations() * kRequests * kMaxTokens);  // tokens
  if (with_metrics) {
    // Mean engine step time, from the metrics themselves.
    const std::string text = registry.Expose();
    auto value = [&](const std::string& series) {
      const size_t at = text.find(series + " ");
      return at == std::string::npos ? 0.0 : std::stod(text.substr(at + series.size() + 1));
    };
    const std::string labels = "{model_name=\"dummy-tiny\"}";
    const double steps = value("tessera_engine_step_seconds_count" + labels);
    if (steps > 0) {
      state.counters["step_us"] = 1e6 * value("tessera_engine_step_seconds_sum" + labels) / steps;
    }
  }
}
BENCHMARK(BM_EngineLoopWorkload)
    ->ArgName("metrics")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The recording alone, as the engine thread does it for one decode step of `batch` sequences:
// OnStep, one OnTokens (counter + ITL histogram) per sequence, Publish. Compare with the
// engine step time (tessera_engine_step_seconds; BM_EngineLoopWorkload's time / steps).
void BM_RecordDecodeStep(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  metrics::Registry registry;
  WorkerMetrics m(registry, {.model_name = "m", .max_model_len = 4096});
  WorkerStateSample sample;
  sample.kv_blocks_total = 1000;
  double t = 0.001;
  for (auto _ : state) {
    m.OnStep(t, batch, batch);
    for (int i = 0; i < batch; ++i) m.OnTokens(1, t);
    sample.running = batch;
    sample.prefix_cache_queries += 16;
    m.Publish(sample);
    t += 1e-9;
  }
  benchmark::DoNotOptimize(registry.Expose().size());
}
BENCHMARK(BM_RecordDecodeStep)->Arg(1)->Arg(32)->Arg(256);

}  // namespace
}  // namespace tessera

BENCHMARK_MAIN();
