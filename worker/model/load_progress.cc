#include "worker/model/load_progress.h"

#include <utility>

#include "absl/strings/str_format.h"
#include "common/logging.h"

namespace tessera {

std::string HumanBytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return absl::StrFormat("%.1f GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return absl::StrFormat("%.1f MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return absl::StrFormat("%.1f KiB", b / 1024.0);
  return absl::StrFormat("%d B", bytes);
}

std::string HumanDuration(std::chrono::steady_clock::duration d) {
  const double s = std::chrono::duration<double>(d).count();
  if (s < 1.0) return absl::StrFormat("%.0f ms", s * 1000.0);
  if (s < 60.0) return absl::StrFormat("%.1f s", s);
  const int64_t whole = static_cast<int64_t>(s);
  return absl::StrFormat("%d min %d s", whole / 60, whole % 60);
}

LoadProgress::LoadProgress(std::string what, int64_t total_tensors, int64_t total_bytes, int shards,
                           Clock::time_point start, Clock::duration interval)
    : what_(std::move(what)),
      total_tensors_(total_tensors),
      total_bytes_(total_bytes),
      shards_(shards),
      start_(start),
      interval_(interval),
      last_log_(start) {
  spdlog::info("loading {}: {} tensors, {} in {} safetensors shard{}", what_, total_tensors_,
               HumanBytes(total_bytes_), shards_, shards_ == 1 ? "" : "s");
}

LoadProgress::~LoadProgress() {
  if (tensors_ == 0) return;
  spdlog::info("loaded {} tensors ({} of checkpoint) from {} shard{} in {}", tensors_,
               HumanBytes(bytes_), shards_seen_.size(), shards_seen_.size() == 1 ? "" : "s",
               HumanDuration(Clock::now() - start_));
}

void LoadProgress::Loaded(int64_t bytes, const void* shard) {
  ++tensors_;
  bytes_ += bytes;
  shards_seen_.insert(shard);
  const Clock::time_point now = Clock::now();
  if (now - last_log_ < interval_) return;
  last_log_ = now;
  const int percent = total_bytes_ > 0 ? static_cast<int>(100 * bytes_ / total_bytes_) : 0;
  spdlog::info("loading: {}/{} tensors, {}/{} ({}%), {}/{} shards, {}", tensors_, total_tensors_,
               HumanBytes(bytes_), HumanBytes(total_bytes_), percent, shards_seen_.size(), shards_,
               HumanDuration(now - start_));
}

}  // namespace tessera
