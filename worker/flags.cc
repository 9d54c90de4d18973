#include "worker/flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/comm/timed_communicator.h"
#include "worker/device/cuda_device.h"

ABSL_FLAG(std::string, model, "",
          "Hugging Face model directory: config.json + *.safetensors (single or sharded)");
ABSL_FLAG(std::string, dummy, "",
          "Use random weights of a named shape instead of --model: tiny, smollm2-135m, "
          "qwen3-0.6b, qwen3-tiny, llama3-8b (with --tokenizer DIR for a real tokenizer)");
ABSL_FLAG(uint64_t, dummy_seed, 0, "Seed of the --dummy weights");
ABSL_FLAG(std::string, tokenizer, "",
          "Directory with the Hugging Face tokenizer files (tokenizer.json, "
          "tokenizer_config.json, generation_config.json); default: the --model directory. "
          "With --dummy it gives the random model a real tokenizer; without it a dummy model "
          "uses the byte tokenizer");
ABSL_FLAG(std::string, chat_template, "",
          "A file with a Jinja chat template that replaces the tokenizer_config.json one "
          "(needed for chat requests to a model that has none)");
ABSL_FLAG(std::string, device, "auto",
          "Where the model runs: auto (CUDA when a GPU is visible), cpu or cuda. Each rank "
          "drives GPU (local rank % visible GPUs)");
ABSL_FLAG(std::string, dtype, "auto",
          "Compute dtype: auto (bfloat16 on CUDA, float32 on the CPU), float32, bfloat16, "
          "float16 (the CPU path is float32 only)");
ABSL_FLAG(double, gpu_memory_utilization, 0.9,
          "CUDA: the fraction of each GPU's memory the replica may use for weights, activations "
          "and KV cache; the KV cache gets what is left after a profiling step");
ABSL_FLAG(bool, cuda_graphs, true,
          "CUDA: replay decode steps from CUDA graphs captured at bucketed batch sizes");
ABSL_FLAG(bool, enforce_eager, false,
          "CUDA: run every step op by op, without CUDA graphs (vLLM's name; overrides "
          "--cuda-graphs)");
ABSL_FLAG(std::string, tp_comm, "auto",
          "CUDA tensor parallelism: auto (NCCL with one GPU per rank, host-staged when ranks "
          "share a GPU), nccl, or host-staged (device->host copies + MPI; for testing on one "
          "GPU)");
ABSL_FLAG(int, block_size, 16, "Tokens per KV-cache block");
ABSL_FLAG(int, max_model_len, 0,
          "Longest prompt + output in tokens; 0 = the model's max_position_embeddings");
ABSL_FLAG(int, max_num_seqs, 256, "Sequences running in one step at most");
ABSL_FLAG(int, max_num_batched_tokens, 2048, "Tokens in one step at most (prefill chunk budget)");
ABSL_FLAG(std::string, kv_cache_memory, "2GiB",
          "KV cache memory per rank on the CPU path (e.g. 4GiB, 512MiB)");
ABSL_FLAG(int64_t, num_kv_blocks, 0,
          "Number of KV blocks per rank; overrides --kv-cache-memory and "
          "--gpu-memory-utilization when set");
ABSL_FLAG(bool, enable_prefix_caching, true, "Reuse cached KV blocks of identical prompt prefixes");
ABSL_FLAG(bool, enable_chunked_prefill, true,
          "Split long prompts across steps within --max-num-batched-tokens");
ABSL_FLAG(std::string, scheduling_policy, "fcfs",
          "fcfs (arrival order) or priority (lower priority value first, then arrival)");
ABSL_FLAG(int, max_waiting, 4096,
          "Waiting requests at most; past it new requests get RESOURCE_EXHAUSTED");
ABSL_FLAG(int, max_logprobs, tessera::kDefaultMaxLogprobs,
          "Largest `logprobs` (top-n per token) a request may ask");
ABSL_FLAG(int, threads, 0, "CPU threads per rank; 0 = the node's cores / ranks on the node");
ABSL_FLAG(bool, batch_invariant, false,
          "CPU: compute every token's logits the same way whatever else is in its batch (a "
          "fixed-order matrix product instead of OpenBLAS's GEMV/GEMM), so a seeded request's "
          "tokens do not depend on its batch-mates, chunking or prefix-cache hits, and a "
          "continuation after a router failover reproduces the uninterrupted stream exactly. "
          "Prefill is slower. The CUDA path is not batch-invariant yet");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");

namespace tessera {

absl::StatusOr<ReplicaOptions> ReplicaOptionsFromFlags(int local_ranks) {
  ReplicaOptions o;
  o.model_dir = absl::GetFlag(FLAGS_model);
  o.dummy_preset = absl::GetFlag(FLAGS_dummy);
  o.dummy_seed = absl::GetFlag(FLAGS_dummy_seed);
  o.tokenizer_dir = absl::GetFlag(FLAGS_tokenizer);
  o.chat_template_file = absl::GetFlag(FLAGS_chat_template);
  o.device = absl::GetFlag(FLAGS_device);
  o.dtype = absl::GetFlag(FLAGS_dtype);
  o.gpu_memory_utilization = absl::GetFlag(FLAGS_gpu_memory_utilization);
  if (!(o.gpu_memory_utilization > 0.0 && o.gpu_memory_utilization <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--gpu-memory-utilization must be in (0, 1], got ", o.gpu_memory_utilization));
  }
  o.cuda_graphs = absl::GetFlag(FLAGS_cuda_graphs) && !absl::GetFlag(FLAGS_enforce_eager);
  {
    absl::StatusOr<TpBackend> backend = ParseTpBackend(absl::GetFlag(FLAGS_tp_comm));
    if (!backend.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--tp-comm: ", backend.status().message()));
    }
    o.tp_backend = *backend;
  }
  o.cache.block_size = absl::GetFlag(FLAGS_block_size);
  o.cache.num_blocks = absl::GetFlag(FLAGS_num_kv_blocks);
  o.cache.enable_prefix_caching = absl::GetFlag(FLAGS_enable_prefix_caching);
  auto mem = ParseByteSize(absl::GetFlag(FLAGS_kv_cache_memory));
  if (!mem.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--kv-cache-memory: ", mem.status().message()));
  }
  o.kv_cache_memory = *mem;
  o.sched.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  o.sched.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  o.sched.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  o.sched.enable_chunked_prefill = absl::GetFlag(FLAGS_enable_chunked_prefill);
  o.sched.max_waiting = absl::GetFlag(FLAGS_max_waiting);
  o.max_logprobs = absl::GetFlag(FLAGS_max_logprobs);
  if (o.max_logprobs < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-logprobs must not be negative, got ", o.max_logprobs));
  }
  ASSIGN_OR_RETURN(o.sched.policy, ParseSchedulingPolicy(absl::GetFlag(FLAGS_scheduling_policy)));
  o.threads = absl::GetFlag(FLAGS_threads);
  o.batch_invariant = absl::GetFlag(FLAGS_batch_invariant);
  o.local_ranks = local_ranks;
  if (o.threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads must be 0 (auto) or positive, got ", o.threads));
  }
  return o;
}

absl::StatusOr<std::unique_ptr<Replica>> BuildReplicaFromFlags(
    const MpiSession& mpi, const MpiCommunicatorOptions& comm_options) {
  ASSIGN_OR_RETURN(ReplicaOptions options, ReplicaOptionsFromFlags(mpi.local_size()));
  options.local_rank = mpi.local_rank();
  CommunicatorOptions co;
  ASSIGN_OR_RETURN(co.device, ResolveDevice(options.device));
  co.backend = options.tp_backend;
  co.mpi = comm_options;
  if (co.device == Device::kCuda) {
    // NCCL binds to the current device: select it before the communicator.
    ASSIGN_OR_RETURN(const int gpu, DeviceForLocalRank(mpi.local_rank()));
    RETURN_IF_ERROR(SelectCudaDevice(gpu));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, MakeCommunicator(mpi, co));
  // The leader's collective time goes into its metrics (tessera_tp_collective_seconds_total).
  if (comm->size() > 1) comm = std::make_unique<TimedCommunicator>(std::move(comm));
  return BuildReplica(options, std::move(comm));
}

}  // namespace tessera
