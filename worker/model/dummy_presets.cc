#include "worker/model/dummy_presets.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace tessera {
namespace {

// The shapes of the --dummy presets: real models' config.json values.
struct DummyPreset {
  const char* name;
  const char* architecture;
  const char* model_type;
  int hidden, intermediate, layers, heads, kv_heads, head_dim, vocab;
  int64_t max_positions;
  double rope_theta, rms_norm_eps;
  bool tied, qk_norm;
  DType dtype;
};

constexpr DummyPreset kDummyPresets[] = {
    // A made-up small Llama for fast tests.
    {"tiny", "LlamaForCausalLM", "llama", 64, 192, 2, 4, 2, 16, 512, 2048, 10000.0, 1e-5, true,
     false, DType::kFloat32},
    // HuggingFaceTB/SmolLM2-135M.
    {"smollm2-135m", "LlamaForCausalLM", "llama", 576, 1536, 30, 9, 3, 64, 49152, 8192, 100000.0,
     1e-5, true, false, DType::kBFloat16},
    // Qwen/Qwen3-0.6B: head_dim 128 although hidden / heads = 64.
    {"qwen3-0.6b", "Qwen3ForCausalLM", "qwen3", 1024, 3072, 28, 16, 8, 128, 151936, 40960,
     1000000.0, 1e-6, true, true, DType::kBFloat16},
    // Qwen3's architecture (q/k norm, tied embeddings) and vocabulary at a
    // test size: with --tokenizer DIR (Qwen3's tokenizer) a real chat
    // pipeline on a model that runs in milliseconds on a CPU.
    {"qwen3-tiny", "Qwen3ForCausalLM", "qwen3", 64, 192, 2, 4, 2, 16, 151936, 40960, 1000000.0,
     1e-6, true, true, DType::kFloat32},
    // meta-llama/Meta-Llama-3-8B (Llama 3.0: no rope scaling).
    {"llama3-8b", "LlamaForCausalLM", "llama", 4096, 14336, 32, 32, 8, 128, 128256, 8192, 500000.0,
     1e-5, false, false, DType::kBFloat16},
};

}  // namespace

std::vector<std::string> DummyPresetNames() {
  std::vector<std::string> names;
  for (const DummyPreset& p : kDummyPresets) names.emplace_back(p.name);
  return names;
}

absl::StatusOr<ModelConfig> DummyModelConfig(absl::string_view preset) {
  const DummyPreset* p = nullptr;
  for (const DummyPreset& candidate : kDummyPresets) {
    if (preset == candidate.name) p = &candidate;
  }
  if (p == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown dummy preset \"", preset, "\" (known: ",
                                            absl::StrJoin(DummyPresetNames(), ", "), ")"));
  }
  ModelConfig c;
  c.architecture = p->architecture;
  c.model_type = p->model_type;
  c.hidden_act = "silu";
  // Without --tokenizer, dummy models run with the byte tokenizer
  // (common/tokenizer.h), whose special ids these are; with a real tokenizer
  // the replica stops at that tokenizer's EOS ids instead.
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.hidden_size = p->hidden;
  c.intermediate_size = p->intermediate;
  c.num_hidden_layers = p->layers;
  c.num_attention_heads = p->heads;
  c.num_key_value_heads = p->kv_heads;
  c.head_dim = p->head_dim;
  c.vocab_size = p->vocab;
  c.max_position_embeddings = p->max_positions;
  c.rope_theta = p->rope_theta;
  c.rms_norm_eps = p->rms_norm_eps;
  c.tie_word_embeddings = p->tied;
  c.qk_norm = p->qk_norm;
  c.torch_dtype = p->dtype;
  RETURN_IF_ERROR(c.Validate());
  return c;
}

}  // namespace tessera
