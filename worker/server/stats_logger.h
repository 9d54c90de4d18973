// The periodic stats line a busy worker logs, as vLLM's LoggingStatLogger does:
//   Avg prompt throughput: 512.0 tokens/s, Avg generation throughput: 88.4 tokens/s,
//   Running: 8 reqs, Waiting: 2 reqs, KV cache usage: 12.5%, Prefix cache hit rate: 40.0%
// Throughputs are over the interval; the hit rate is the interval's (the cumulative one when
// the interval queried nothing). An idle worker (no tokens in this interval and the last one)
// logs nothing at info level, only at debug.
//
// Not thread-safe: the engine thread owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tessera {

class StatsLogger {
 public:
  using Clock = std::chrono::steady_clock;
  explicit StatsLogger(Clock::duration interval, Clock::time_point now = Clock::now())
      : interval_(interval), start_(now) {}

  void AddTokens(int64_t prompt, int64_t generation) {
    prompt_ += prompt;
    generation_ += generation;
  }

  struct State {
    int running = 0;
    int waiting = 0;
    double kv_usage = 0.0;             // 0..1
    int64_t prefix_cache_queries = 0;  // cumulative
    int64_t prefix_cache_hits = 0;     // cumulative
  };
  // Logs the line when the interval has passed (and starts the next one). Returns the line
  // ("" when it was not time yet), for tests.
  std::string MaybeLog(Clock::time_point now, const State& state);

 private:
  const Clock::duration interval_;
  Clock::time_point start_;
  int64_t prompt_ = 0;
  int64_t generation_ = 0;
  int64_t last_queries_ = 0;
  int64_t last_hits_ = 0;
  bool last_busy_ = false;
};

}  // namespace tessera
