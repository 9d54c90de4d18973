// Building one rank of a replica: model config, this rank's weight shard, the
// KV cache sized from the options, and (on rank 0) the engine. Shared by
// tessera-generate, tessera-worker and the tests.
//
// On a CUDA device the rank drives GPU local_rank % (visible GPUs), loads its
// shard in the compute dtype (bfloat16 unless told otherwise), and sizes the
// KV cache like vLLM: after a profiling forward pass at the largest step
// (max_num_batched_tokens tokens, max_num_seqs sequences) it takes
//   gpu_memory_utilization * total - (memory in use on the GPU)
// split evenly among the ranks that share the GPU, in whole blocks, the
// same count on every rank (the smallest). Then decode CUDA graphs are
// captured.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/api/request_limits.h"
#include "common/config.h"
#include "common/model_text.h"
#include "kernels/tensor.h"
#include "worker/comm/make_communicator.h"
#include "worker/engine/engine.h"
#include "worker/exec/model_executor.h"
#include "worker/model/model_config.h"

namespace tessera {

struct ReplicaOptions {
  std::string model_dir;     // Hugging Face directory, or empty with dummy_preset
  std::string dummy_preset;  // --dummy: random weights of a named shape
  // --tokenizer: the directory of the tokenizer files (tokenizer.json,
  // tokenizer_config.json, generation_config.json); empty = model_dir, or the
  // byte tokenizer for a dummy model.
  std::string tokenizer_dir;
  // --chat-template: a file whose Jinja template replaces the tokenizer's.
  std::string chat_template_file;
  uint64_t dummy_seed = 0;
  // "cpu", "cuda", or "auto" (cuda when a GPU is visible). The flag's
  // default is auto; this struct's is cpu, so tests that build replicas
  // directly stay on the CPU on GPU machines.
  std::string device = "cpu";
  // "auto" = bfloat16 on CUDA, float32 on the CPU (the only CPU dtype).
  std::string dtype = "auto";
  // CUDA: the fraction of the GPU's memory this replica's ranks on it may
  // use (weights, activations, KV cache), in (0, 1].
  double gpu_memory_utilization = 0.9;
  bool cuda_graphs = true;  // CUDA: replay decode steps from CUDA graphs
  // The rank among the processes of this node (picks the GPU); -1 = from the
  // launcher's environment (LocalRankFromEnv).
  int local_rank = -1;
  TpBackend tp_backend = TpBackend::kAuto;     // used by BuildReplicaFromFlags
  CacheConfig cache;                           // cache.num_blocks 0 = derive from kv_cache_memory
  int64_t kv_cache_memory = int64_t{2} << 30;  // bytes of KV cache per rank (CPU)
  // sched.max_model_len 0 (the default here) = the model's max_position_embeddings.
  SchedulerConfig sched = [] {
    SchedulerConfig s;
    s.max_model_len = 0;
    return s;
  }();
  int max_logprobs = kDefaultMaxLogprobs;  // largest `logprobs` a request may ask
  int threads = 0;                         // CPU threads per rank; 0 = cores / ranks on this node
  bool batch_invariant = false;            // ops::SetCpuBatchInvariant (--batch-invariant)
  int local_ranks = 1;                     // ranks sharing this node's cores
};

// One rank's share of a replica. `engine` is set on rank 0 only.
struct Replica {
  ModelConfig config;
  CacheConfig cache;
  SchedulerConfig sched;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<ModelExecutor> executor;
  // The tokenizer and chat template (every rank loads it; rank 0 uses it).
  std::shared_ptr<const ModelText> text;
  std::unique_ptr<Engine> engine;
  std::string model_name;  // the directory's base name or "dummy-<preset>"
  // What requests are admitted against (model name, vocabulary,
  // max_model_len, max_logprobs, max_stop): by the service and the engine,
  // and reported to the router in ModelInfo.
  api::RequestLimits limits;
  Device device = Device::kCpu;
  DType dtype = DType::kFloat32;
  int cuda_device = -1;  // ordinal, on CUDA
};

// "cpu", "cuda" or "auto" -> the device. INVALID_ARGUMENT for another name;
// FAILED_PRECONDITION for cuda without a usable GPU (with the reason).
absl::StatusOr<Device> ResolveDevice(absl::string_view name);

// Validates the options (INVALID_ARGUMENT naming the flag), loads this
// rank's shard and allocates its KV cache. Collective: every rank of `comm`
// calls it with the same options. A CUDA replica of several ranks needs a
// communicator for CUDA tensors (MakeCommunicator with Device::kCuda, made
// after selecting the rank's GPU); RESOURCE_EXHAUSTED when the GPU memory
// holds no KV block.
absl::StatusOr<std::unique_ptr<Replica>> BuildReplica(const ReplicaOptions& options,
                                                      std::unique_ptr<Communicator> comm);

// Parses sizes such as "4GiB", "512MiB", "1.5GB", "1048576".
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

}  // namespace tessera
