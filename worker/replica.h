// Building one rank of a replica: model config, this rank's weight shard, the
// KV cache sized from the options, and (on rank 0) the engine. Shared by
// tessera-generate, tessera-worker and the tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/tokenizer.h"
#include "worker/engine.h"
#include "worker/model/model_config.h"
#include "worker/model_executor.h"
#include "worker/tp_group.h"

namespace tessera {

struct ReplicaOptions {
  std::string model_dir;     // Hugging Face directory, or empty with dummy_preset
  std::string dummy_preset;  // --dummy: random weights of a named shape
  uint64_t dummy_seed = 0;
  std::string dtype = "auto";                  // the CPU path computes in float32
  CacheConfig cache;                           // cache.num_blocks 0 = derive from kv_cache_memory
  int64_t kv_cache_memory = int64_t{2} << 30;  // bytes of KV cache per rank (CPU)
  // sched.max_model_len 0 (the default here) = the model's max_position_embeddings.
  SchedulerConfig sched = [] {
    SchedulerConfig s;
    s.max_model_len = 0;
    return s;
  }();
  int threads = 0;      // CPU threads per rank; 0 = cores / ranks on this node
  int local_ranks = 1;  // ranks sharing this node's cores
};

// One rank's share of a replica. `engine` is set on rank 0 only.
struct Replica {
  ModelConfig config;
  CacheConfig cache;
  SchedulerConfig sched;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<ModelExecutor> executor;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Engine> engine;
  std::string model_name;  // the directory's base name or "dummy-<preset>"
};

// Validates the options (INVALID_ARGUMENT naming the flag), loads this
// rank's shard and allocates its KV cache. Collective: every rank of `comm`
// calls it with the same options.
absl::StatusOr<std::unique_ptr<Replica>> BuildReplica(const ReplicaOptions& options,
                                                      std::unique_ptr<Communicator> comm);

// Parses sizes such as "4GiB", "512MiB", "1.5GB", "1048576".
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

}  // namespace tessera
