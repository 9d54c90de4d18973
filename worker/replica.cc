#include "worker/replica.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "kernels/ops.h"
#include "worker/model/weight_source.h"

namespace tessera {

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
  if (options.dtype != "auto" && options.dtype != "float32") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--dtype ", options.dtype,
        ": the CPU path computes in float32; use --dtype float32 (or auto), or a CUDA build"));
  }

  const int local = std::max(1, options.local_ranks);
  const int threads =
      options.threads > 0
          ? options.threads
          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local);
  ops::SetCpuThreads(threads);

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

  ASSIGN_OR_RETURN(auto model, LlamaForCausalLM::Load(config, *weights, *comm, DType::kFloat32));
  replica->cache = options.cache;
  if (replica->cache.num_blocks == 0) {
    // Every rank sizes the pool from rank 0's shard (the largest under an
    // uneven split) so all ranks agree on the block count.
    ASSIGN_OR_RETURN(const TpPartition p0, PartitionForRank(config, comm->size(), 0));
    KvCacheShape shape = model->CacheShape(1, options.cache.block_size);
    shape.num_kv_heads = static_cast<int>(p0.kv_heads.size());
    replica->cache.num_blocks =
        options.kv_cache_memory / static_cast<int64_t>(shape.bytes_per_block());
    if (replica->cache.num_blocks < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--kv-cache-memory ", options.kv_cache_memory, " bytes holds no KV block (one takes ",
          shape.bytes_per_block(), " bytes); raise it or set --num-kv-blocks"));
    }
  }
  RETURN_IF_ERROR(replica->cache.Validate());
  KvCache cache =
      KvCache::Allocate(model->CacheShape(replica->cache.num_blocks, replica->cache.block_size));
  replica->executor = std::make_unique<ModelExecutor>(std::move(model), std::move(cache));
  replica->tokenizer = MakeByteTokenizer(config.vocab_size);
  replica->comm = std::move(comm);
  if (replica->comm->rank() == 0) {
    replica->engine =
        std::make_unique<Engine>(replica->sched, replica->cache, config.eos_token_ids,
                                 config.vocab_size, *replica->executor, *replica->comm);
  }
  spdlog::info(
      "rank {}/{}: {} loaded ({} layers, hidden {}, vocab {}); KV cache {} blocks of {} "
      "tokens; {} CPU threads",
      replica->comm->rank(), replica->comm->size(), replica->model_name, config.num_hidden_layers,
      config.hidden_size, config.vocab_size, replica->cache.num_blocks, replica->cache.block_size,
      threads);
  return replica;
}

}  // namespace tessera
