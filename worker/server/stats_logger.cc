#include "worker/server/stats_logger.h"

#include <string>

#include "absl/strings/str_format.h"
#include "common/logging.h"

namespace tessera {

std::string StatsLogger::MaybeLog(Clock::time_point now, const State& state) {
  const double seconds = std::chrono::duration<double>(now - start_).count();
  if (now - start_ < interval_ || seconds <= 0) return "";
  const int64_t queries = state.prefix_cache_queries - last_queries_;
  const int64_t hits = state.prefix_cache_hits - last_hits_;
  double hit_rate = 0.0;
  if (queries > 0) {
    hit_rate = static_cast<double>(hits) / static_cast<double>(queries);
  } else if (state.prefix_cache_queries > 0) {
    hit_rate = static_cast<double>(state.prefix_cache_hits) /
               static_cast<double>(state.prefix_cache_queries);
  }
  const std::string line = absl::StrFormat(
      "Avg prompt throughput: %.1f tokens/s, Avg generation throughput: %.1f tokens/s, "
      "Running: %d reqs, Waiting: %d reqs, KV cache usage: %.1f%%, Prefix cache hit rate: %.1f%%",
      static_cast<double>(prompt_) / seconds, static_cast<double>(generation_) / seconds,
      state.running, state.waiting, state.kv_usage * 100.0, hit_rate * 100.0);
  const bool busy = prompt_ > 0 || generation_ > 0 || state.running > 0 || state.waiting > 0;
  if (busy || last_busy_) {
    spdlog::info("{}", line);
  } else {
    spdlog::debug("{}", line);  // idle: no noise
  }
  last_busy_ = busy;
  start_ = now;
  prompt_ = 0;
  generation_ = 0;
  last_queries_ = state.prefix_cache_queries;
  last_hits_ = state.prefix_cache_hits;
  return line;
}

}  // namespace tessera
