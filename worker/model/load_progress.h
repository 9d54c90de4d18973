// Progress of loading a checkpoint, logged so that a minute of silence while a large model
// loads is not mistaken for a hang:
//   loading /models/llama-70b: 723 tensors, 131.4 GiB in 30 safetensors shards
//   loading: 212/723 tensors, 38.2/131.4 GiB (29%), 9/30 shards, 41 s
//   loaded 723 tensors (131.4 GiB of checkpoint) from 30 shards in 2 min 17 s
// A progress line every `interval` while loading; the summary when the loading ends (the
// object is destroyed after at least one tensor was loaded). Bytes are checkpoint bytes read
// (a tensor-parallel rank reads its slice out of each full tensor).
//
// Not thread-safe: the loading thread owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"

namespace tessera {

class LoadProgress {
 public:
  using Clock = std::chrono::steady_clock;
  LoadProgress(std::string what, int64_t total_tensors, int64_t total_bytes, int shards,
               Clock::time_point start, Clock::duration interval = std::chrono::seconds(5));
  ~LoadProgress();
  LoadProgress(const LoadProgress&) = delete;
  LoadProgress& operator=(const LoadProgress&) = delete;

  // One tensor of `bytes` read from shard `shard` (any id of the file).
  void Loaded(int64_t bytes, const void* shard);

 private:
  const std::string what_;
  const int64_t total_tensors_;
  const int64_t total_bytes_;
  const int shards_;
  const Clock::time_point start_;
  const Clock::duration interval_;
  Clock::time_point last_log_;
  int64_t tensors_ = 0;
  int64_t bytes_ = 0;
  absl::flat_hash_set<const void*> shards_seen_;
};

// "1.5 GiB", "312.0 MiB", "4.0 KiB", "12 B".
std::string HumanBytes(int64_t bytes);
// "850 ms", "12.3 s", "2 min 17 s".
std::string HumanDuration(std::chrono::steady_clock::duration d);

}  // namespace tessera
