#include "worker/replica.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "kernels/ops.h"
#include "worker/comm/gpu_peers.h"
#include "worker/device/cuda_device.h"
#include "worker/model/dummy_presets.h"
#include "worker/model/weight_source.h"

namespace tessera {

namespace {

std::string GiB(int64_t bytes) { return absl::StrFormat("%.2f GiB", bytes / 1073741824.0); }

// The smallest of every rank's `value` (over `comm`'s CPU all-gather).
absl::StatusOr<int64_t> MinOverRanks(Communicator& comm, int64_t value) {
  if (comm.size() == 1) return value;
  Tensor mine = Tensor::Empty(DType::kInt64, {1});
  *mine.data_as<int64_t>() = value;
  Tensor all;
  RETURN_IF_ERROR(comm.AllGather(mine, all));
  int64_t least = value;
  for (int r = 0; r < comm.size(); ++r) least = std::min(least, all.data_as<int64_t>()[r]);
  return least;
}

// Sizes the KV cache of a CUDA replica from the memory left after a
// profiling run at the largest step (see replica.h). `executor` holds the
// model and no cache yet.
absl::StatusOr<int64_t> GpuKvBlocks(const ReplicaOptions& options, ModelExecutor& executor,
                                    Communicator& comm, int block_size,
                                    const KvCacheShape& rank0_block) {
  const LlamaForCausalLM& model = executor.model();
  {
    ASSIGN_OR_RETURN(KvCache scratch,
                     KvCache::TryAllocate(model.CacheShape(executor.ProfileBlocks(), block_size),
                                          Device::kCuda));
    executor.SetCache(std::move(scratch));
  }
  RETURN_IF_ERROR(executor.ProfileRun());
  executor.SetCache(KvCache());  // frees the profiling cache
  // Every rank sharing this GPU has loaded and profiled before anyone looks.
  RETURN_IF_ERROR(comm.Barrier());
  ASSIGN_OR_RETURN(const DeviceMemoryInfo mem, CudaMemoryInfo());
  ASSIGN_OR_RETURN(const int sharing, RanksOnThisGpu(comm));
  const int64_t in_use = mem.total - mem.free;
  const int64_t allowed = static_cast<int64_t>(options.gpu_memory_utilization * mem.total);
  const int64_t budget = (allowed - in_use) / sharing;
  const int64_t per_block = static_cast<int64_t>(rank0_block.bytes_per_block());
  const int64_t blocks = budget > 0 ? budget / per_block : 0;
  spdlog::info(
      "rank {}: GPU memory {} total, {} in use after loading {} of weights and profiling "
      "(utilization cap {} = {}, {} rank(s) on this GPU): {} for the KV cache = {} blocks of {}",
      comm.rank(), GiB(mem.total), GiB(in_use), GiB(model.weight_bytes()),
      options.gpu_memory_utilization, GiB(allowed), sharing, GiB(std::max<int64_t>(budget, 0)),
      blocks, per_block);
  ASSIGN_OR_RETURN(const int64_t agreed, MinOverRanks(comm, blocks));
  if (agreed < 1) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "--gpu-memory-utilization ", options.gpu_memory_utilization,
        " leaves no room for a KV block: ", GiB(allowed), " allowed of ", GiB(mem.total), ", ",
        GiB(in_use), " in use after loading the weights (", GiB(model.weight_bytes()),
        " on this rank) and a profiling step of --max-num-batched-tokens ",
        options.sched.max_num_batched_tokens,
        "; raise --gpu-memory-utilization, lower --max-num-batched-tokens / --max-num-seqs, use "
        "more ranks, or set --num-kv-blocks"));
  }
  return agreed;
}

}  // namespace

absl::StatusOr<Device> ResolveDevice(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "cpu") return Device::kCpu;
  if (n == "auto") return UsableCudaDevices() > 0 ? Device::kCuda : Device::kCpu;
  if (n == "cuda" || n == "gpu") {
    if (UsableCudaDevices() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("--device cuda: no usable GPU: ", CudaUnavailableReason()));
    }
    return Device::kCuda;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--device ", name, ": expected auto, cpu or cuda"));
}

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  static const std::pair<const char*, double> kUnits[] = {{"gib", 1024.0 * 1024 * 1024},
                                                          {"mib", 1024.0 * 1024},
                                                          {"kib", 1024.0},
                                                          {"gb", 1e9},
                                                          {"mb", 1e6},
                                                          {"kb", 1e3},
                                                          {"g", 1024.0 * 1024 * 1024},
                                                          {"m", 1024.0 * 1024},
                                                          {"k", 1024.0},
                                                          {"b", 1.0}};
  double scale = 1.0;
  absl::string_view number = t;
  for (const auto& [suffix, factor] : kUnits) {
    if (absl::EndsWith(t, suffix)) {
      number = absl::string_view(t).substr(0, t.size() - std::string_view(suffix).size());
      scale = factor;
      break;
    }
  }
  double value = 0;
  if (!absl::SimpleAtod(number, &value) || value < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a size (expected e.g. 4GiB, 512MiB, 1000000)"));
  }
  return static_cast<int64_t>(value * scale);
}

absl::StatusOr<std::unique_ptr<Replica>> BuildReplica(const ReplicaOptions& options,
                                                      std::unique_ptr<Communicator> comm) {
  auto replica = std::make_unique<Replica>();
  if (options.model_dir.empty() == options.dummy_preset.empty()) {
    return absl::InvalidArgumentError("give exactly one of --model DIR and --dummy PRESET");
  }
  ASSIGN_OR_RETURN(const Device device, ResolveDevice(options.device));
  replica->device = device;
  if (options.dtype == "auto") {
    replica->dtype = device == Device::kCuda ? DType::kBFloat16 : DType::kFloat32;
  } else {
    absl::StatusOr<DType> dtype = ParseDType(options.dtype);
    if (!dtype.ok())
      return absl::InvalidArgumentError(absl::StrCat("--dtype: ", dtype.status().message()));
    replica->dtype = *dtype;
  }
  if (device == Device::kCpu && replica->dtype != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--dtype ", options.dtype,
        ": the CPU path computes in float32; use --dtype float32 (or auto), or --device cuda"));
  }
  if (device == Device::kCuda) {
    if (!(options.gpu_memory_utilization > 0.0 && options.gpu_memory_utilization <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--gpu-memory-utilization must be in (0, 1], got ", options.gpu_memory_utilization));
    }
    if (comm->size() > 1 && comm->name() == "mpi") {
      return absl::InvalidArgumentError(
          "a CUDA replica of several ranks needs the nccl or host-staged communicator, not mpi "
          "(MakeCommunicator with Device::kCuda)");
    }
    const int local_rank = options.local_rank >= 0 ? options.local_rank : LocalRankFromEnv();
    ASSIGN_OR_RETURN(replica->cuda_device, DeviceForLocalRank(local_rank));
    RETURN_IF_ERROR(SelectCudaDevice(replica->cuda_device));
  }
  std::unique_ptr<WeightSource> weights;
  if (!options.dummy_preset.empty()) {
    ASSIGN_OR_RETURN(replica->config, DummyModelConfig(options.dummy_preset));
    weights = MakeDummyWeightSource(options.dummy_seed);
    replica->model_name = absl::StrCat("dummy-", options.dummy_preset);
  } else {
    ASSIGN_OR_RETURN(replica->config, LoadModelConfig(options.model_dir));
    ASSIGN_OR_RETURN(weights, OpenSafetensorsDir(options.model_dir));
    replica->model_name =
        std::filesystem::path(options.model_dir).lexically_normal().filename().string();
    if (replica->model_name.empty()) {
      replica->model_name =
          std::filesystem::path(options.model_dir).lexically_normal().parent_path().filename();
    }
  }
  const ModelConfig& config = replica->config;

  // The tokenizer: --tokenizer DIR, else the model directory's files; a
  // dummy model without --tokenizer gets the byte tokenizer.
  {
    const bool flag = !options.tokenizer_dir.empty();
    const std::string& dir = flag ? options.tokenizer_dir : options.model_dir;
    absl::StatusOr<std::shared_ptr<const ModelText>> text =
        ModelText::LoadFromDir(dir, options.chat_template_file, config.vocab_size);
    if (!text.ok()) {
      return absl::Status(text.status().code(), absl::StrCat(flag ? "--tokenizer " : "", dir, ": ",
                                                             text.status().message()));
    }
    if (flag && (*text)->info().byte_tokenizer) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tokenizer ", dir, ": no tokenizer.json in that directory"));
    }
    if ((*text)->tokenizer().vocab_size() > config.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("the tokenizer has ", (*text)->tokenizer().vocab_size(),
                       " tokens, more than the model's vocab_size ", config.vocab_size));
    }
    replica->text = *std::move(text);
  }
  // Generation ends at the model config's EOS ids and the tokenizer's (its
  // EOS and generation_config.json's list); a dummy model with a real
  // tokenizer ends at the tokenizer's only.
  std::vector<int32_t> eos_ids = replica->text->eos_ids();
  if (options.dummy_preset.empty() || replica->text->info().byte_tokenizer) {
    for (int32_t id : config.eos_token_ids) {
      if (std::find(eos_ids.begin(), eos_ids.end(), id) == eos_ids.end()) eos_ids.push_back(id);
    }
  }

  const int local = std::max(1, options.local_ranks);
  const int threads =
      options.threads > 0
          ? options.threads
          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local);
  ops::SetCpuThreads(threads);
  ops::SetCpuBatchInvariant(options.batch_invariant);

  // Scheduling limits default to the model's.
  replica->sched = options.sched;
  if (replica->sched.max_model_len == 0) {
    replica->sched.max_model_len = static_cast<int>(config.max_position_embeddings);
  } else if (replica->sched.max_model_len > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("--max-model-len ", replica->sched.max_model_len,
                                                   " exceeds the model's max_position_embeddings (",
                                                   config.max_position_embeddings, ")"));
  }
  RETURN_IF_ERROR(replica->sched.Validate());

  ASSIGN_OR_RETURN(auto model,
                   LlamaForCausalLM::Load(config, *weights, *comm, replica->dtype, device));
  weights.reset();  // unmaps the files
  replica->cache = options.cache;
  // Every rank sizes the pool from rank 0's shard (the largest under an
  // uneven split) so all ranks agree on the block count.
  ASSIGN_OR_RETURN(const TpPartition p0, PartitionForRank(config, comm->size(), 0));
  KvCacheShape rank0_block = model->CacheShape(1, options.cache.block_size);
  rank0_block.num_kv_heads = static_cast<int>(p0.kv_heads.size());
  if (device == Device::kCpu) {
    if (replica->cache.num_blocks == 0) {
      replica->cache.num_blocks =
          options.kv_cache_memory / static_cast<int64_t>(rank0_block.bytes_per_block());
      if (replica->cache.num_blocks < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--kv-cache-memory ", options.kv_cache_memory, " bytes holds no KV block (one takes ",
            rank0_block.bytes_per_block(), " bytes); raise it or set --num-kv-blocks"));
      }
    }
    RETURN_IF_ERROR(replica->cache.Validate());
    KvCache cache =
        KvCache::Allocate(model->CacheShape(replica->cache.num_blocks, replica->cache.block_size));
    ASSIGN_OR_RETURN(replica->executor,
                     ModelExecutor::Create(std::move(model), std::move(cache), ExecutorOptions{}));
  } else {
    ExecutorOptions eo;
    eo.max_num_batched_tokens = replica->sched.max_num_batched_tokens;
    eo.max_num_seqs = replica->sched.max_num_seqs;
    eo.max_model_len = replica->sched.max_model_len;
    eo.block_size = replica->cache.block_size;
    eo.cuda_graphs = options.cuda_graphs;
    ASSIGN_OR_RETURN(replica->executor, ModelExecutor::Create(std::move(model), KvCache(), eo));
    if (replica->cache.num_blocks == 0) {
      ASSIGN_OR_RETURN(
          replica->cache.num_blocks,
          GpuKvBlocks(options, *replica->executor, *comm, replica->cache.block_size, rank0_block));
    }
    RETURN_IF_ERROR(replica->cache.Validate());
    absl::StatusOr<KvCache> cache = KvCache::TryAllocate(
        replica->executor->model().CacheShape(replica->cache.num_blocks, replica->cache.block_size),
        Device::kCuda);
    if (!cache.ok()) {
      return absl::Status(cache.status().code(),
                          absl::StrCat("allocating ", replica->cache.num_blocks,
                                       " KV blocks on the GPU: ", cache.status().message()));
    }
    replica->executor->SetCache(*std::move(cache));
    RETURN_IF_ERROR(replica->executor->CaptureDecodeGraphs());
  }
  replica->comm = std::move(comm);
  replica->limits.model_name = replica->model_name;
  replica->limits.vocab_size = static_cast<int32_t>(config.vocab_size);
  replica->limits.max_model_len = replica->sched.max_model_len;
  replica->limits.max_logprobs = options.max_logprobs;
  replica->limits.max_n = replica->sched.max_num_seqs;
  if (replica->comm->rank() == 0) {
    replica->engine =
        std::make_unique<Engine>(replica->sched, replica->cache, eos_ids, replica->limits,
                                 &replica->text->tokenizer(), *replica->executor, *replica->comm);
  }
  if (device == Device::kCpu) {
    spdlog::info(
        "rank {}/{}: {} loaded ({} layers, hidden {}, vocab {}); KV cache {} blocks of {} "
        "tokens; {} CPU threads",
        replica->comm->rank(), replica->comm->size(), replica->model_name, config.num_hidden_layers,
        config.hidden_size, config.vocab_size, replica->cache.num_blocks, replica->cache.block_size,
        threads);
  } else {
    spdlog::info(
        "rank {}/{}: {} loaded on GPU {} in {} ({} layers, hidden {}, vocab {}); KV cache {} "
        "blocks of {} tokens; {} communicator; CUDA graphs {}",
        replica->comm->rank(), replica->comm->size(), replica->model_name, replica->cuda_device,
        DTypeName(replica->dtype), config.num_hidden_layers, config.hidden_size, config.vocab_size,
        replica->cache.num_blocks, replica->cache.block_size, replica->comm->name(),
        replica->executor->graphs_enabled()
            ? absl::StrCat("for batches up to ", replica->executor->graph_buckets().back())
            : std::string("off"));
  }
  return replica;
}

}  // namespace tessera
