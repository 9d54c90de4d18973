// gpu_bench: Tessera on one GPU against the GPU's own limits. The model and
// the replica come from the worker's flags (worker/flags.h: --dummy, --dtype,
// --max-num-seqs, --max-num-batched-tokens, --max-model-len,
// --gpu-memory-utilization, --cuda-graphs, ...); bench/gpu/run.sh runs it on
// --dummy llama3-8b in bfloat16. Measures, in one run:
//   (0) the device-to-device copy bandwidth (cudaMemcpy of a 2 GiB buffer,
//       counting read + write bytes) and the bf16 GEMM rate (cuBLASLt, a
//       large square GEMM with float32 accumulation): the two roofs;
//   (b) prefill: steps of --max-num-batched-tokens tokens (sequences of
//       --context tokens) through the model executor, as tokens/s and as a fraction of
//       the GEMM rate (2 * parameters FLOPs per token, attention left out);
//   (a) decode: steps of batch B (each sequence one new token after --context
//       tokens of context, which the prefill above cached), Forward + GPU
//       sampling, median over --decode-steps, against the HBM roofline:
//       (weights read per step + KV bytes read) / copy bandwidth;
//   (c) offline throughput: --offline-requests requests of --input-len prompt
//       tokens and --output-len output tokens through the engine, like
//       tessera-generate (continuous batching, greedy, ignore_eos).
// Prints a table and writes --json section by section (a failed section is
// recorded under "errors" and the others still run; exit status 1 then).
// Run by bench/gpu/run.sh and bench/gpu/first_run.sh, which add the Hugging
// Face transformers baseline. The roofs: gpu_roofs.h; the step plans:
// step_plans.h.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/gpu/gpu_roofs.h"
#include "bench/gpu/step_plans.h"
#include "common/cli.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/device/cuda_device.h"
#include "worker/flags.h"
#include "worker/replica.h"

ABSL_FLAG(std::string, batches, "1,8,32,128,256", "Decode batch sizes");
ABSL_FLAG(int, context, 512, "Context tokens of every decode sequence (and prefill length)");
ABSL_FLAG(int, decode_steps, 20, "Timed decode steps per batch size (after 3 warm-up steps)");
ABSL_FLAG(int, offline_requests, 1000, "Requests of the offline run (0 = skip it)");
ABSL_FLAG(int, input_len, 128, "Prompt tokens of each offline request");
ABSL_FLAG(int, output_len, 128, "Output tokens of each offline request");
ABSL_FLAG(int, gemm_size, 8192, "M = N = K of the roof GEMM");
ABSL_FLAG(std::string, json, "", "Write the results here as JSON");

namespace tessera {
namespace {

using Clock = std::chrono::steady_clock;
using gpu_bench::CopyBandwidth;
using gpu_bench::DecodePlan;
using gpu_bench::GemmRate;
using gpu_bench::Median;
using gpu_bench::PrefillPlan;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The results document, rewritten (temp file + rename) after every section,
// so a section that fails or hangs loses only its own figures. A failed
// section is recorded under "errors" and the independent ones still run.
class Results {
 public:
  explicit Results(std::string path) : path_(std::move(path)) {}
  nlohmann::json& doc() { return doc_; }
  // Writes the document now; a write failure is reported once, on stderr.
  void Flush() {
    if (path_.empty()) return;
    const std::string tmp = path_ + ".tmp";
    {
      std::ofstream f(tmp);
      f << doc_.dump(2) << "\n";
      if (!f) {
        std::fprintf(stderr, "gpu_bench: cannot write %s\n", tmp.c_str());
        return;
      }
    }
    if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
      std::fprintf(stderr, "gpu_bench: cannot rename %s to %s\n", tmp.c_str(), path_.c_str());
    }
  }
  // Records `s` (not OK) as section `name`'s failure, prints and writes it.
  void Fail(const std::string& name, const absl::Status& s) {
    doc_["errors"][name] = std::string(s.message());
    std::fprintf(stderr, "gpu_bench: section %s failed: %s\n", name.c_str(),
                 std::string(s.message()).c_str());
    failed_ = true;
    Flush();
  }
  bool failed() const { return failed_; }

 private:
  std::string path_;
  nlohmann::json doc_ = nlohmann::json::object();
  bool failed_ = false;
};

absl::Status Run(Results& results) {
  nlohmann::json& out = results.doc();
  const int context = absl::GetFlag(FLAGS_context);
  std::vector<int> batches;
  for (absl::string_view b : absl::StrSplit(absl::GetFlag(FLAGS_batches), ',', absl::SkipEmpty())) {
    int v = 0;
    if (!absl::SimpleAtoi(b, &v) || v < 1) {
      return absl::InvalidArgumentError(absl::StrCat("--batches: bad batch size '", b, "'"));
    }
    batches.push_back(v);
  }
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  RETURN_IF_ERROR(SelectCudaDevice(0));
  ASSIGN_OR_RETURN(const CudaDeviceInfo info, GetCudaDeviceInfo(0));
  out["device"] = info.name;
  out["compute_capability"] = absl::StrCat(info.cc_major, ".", info.cc_minor);
  out["spec_memory_bandwidth_GBps"] = info.peak_memory_bandwidth / 1e9;

  results.Flush();

  // (0) The roofs, before the replica takes the memory. Without a measured
  // roof the ratios use the datasheet bandwidth / no GEMM fraction.
  double bandwidth = info.peak_memory_bandwidth, gemm = 0;
  if (absl::StatusOr<double> b = CopyBandwidth(); b.ok()) {
    bandwidth = *b;
    out["copy_bandwidth_GBps"] = bandwidth / 1e9;
  } else {
    results.Fail("copy_bandwidth", b.status());
  }
  if (absl::StatusOr<double> g = GemmRate(absl::GetFlag(FLAGS_gemm_size)); g.ok()) {
    gemm = *g;
    out["gemm_bf16_TFLOPS"] = gemm / 1e12;
  } else {
    results.Fail("gemm_rate", g.status());
  }
  results.Flush();
  std::printf(
      "%s (sm_%d%d): device-to-device copy %.0f GB/s (spec %.0f GB/s); bf16 GEMM "
      "%dx%dx%d %.0f TFLOP/s\n",
      info.name.c_str(), info.cc_major, info.cc_minor, bandwidth / 1e9,
      info.peak_memory_bandwidth / 1e9, absl::GetFlag(FLAGS_gemm_size),
      absl::GetFlag(FLAGS_gemm_size), absl::GetFlag(FLAGS_gemm_size), gemm / 1e12);

  ASSIGN_OR_RETURN(ReplicaOptions o, ReplicaOptionsFromFlags(/*local_ranks=*/1));
  o.device = "cuda";
  o.local_rank = 0;
  const int decode_steps = absl::GetFlag(FLAGS_decode_steps);
  if (o.sched.max_num_seqs < max_batch) {
    return absl::InvalidArgumentError(absl::StrCat("--max-num-seqs ", o.sched.max_num_seqs,
                                                   " is below the largest batch ", max_batch));
  }
  const int need_len = std::max(context + decode_steps + 8,
                                absl::GetFlag(FLAGS_input_len) + absl::GetFlag(FLAGS_output_len));
  if (o.sched.max_model_len != 0 && o.sched.max_model_len < need_len) {
    return absl::InvalidArgumentError(absl::StrCat("--max-model-len ", o.sched.max_model_len,
                                                   " is below the ", need_len,
                                                   " tokens the benchmark needs"));
  }
  const auto load_start = Clock::now();
  ASSIGN_OR_RETURN(std::unique_ptr<Replica> replica,
                   BuildReplica(o, MakeSingleProcessCommunicator()));
  const double load_s = Seconds(load_start, Clock::now());
  ModelExecutor& ex = *replica->executor;
  const ModelConfig& cfg = replica->config;
  const int64_t weight_bytes = ex.model().weight_bytes();
  const int64_t dsize = static_cast<int64_t>(DTypeSize(replica->dtype));
  // A decode step reads every weight but the embedding table (only B rows of it).
  const int64_t embed_bytes = int64_t{cfg.vocab_size} * cfg.hidden_size * dsize;
  const int64_t step_weight_bytes = weight_bytes - (cfg.tie_word_embeddings ? 0 : embed_bytes);
  const int64_t kv_bytes_per_token =
      int64_t{2} * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * dsize;
  const double params = static_cast<double>(weight_bytes) / dsize;
  out["model"] = replica->model_name;
  out["dtype"] = std::string(DTypeName(replica->dtype));
  out["weight_bytes"] = weight_bytes;
  out["load_seconds"] = load_s;
  out["kv_blocks"] = replica->cache.num_blocks;
  out["cuda_graphs"] = ex.graphs_enabled();
  results.Flush();
  std::printf("%s %s: %.2f GB of weights, loaded in %.1f s; KV cache %lld blocks of %d\n",
              replica->model_name.c_str(), std::string(DTypeName(replica->dtype)).c_str(),
              weight_bytes / 1e9, load_s, static_cast<long long>(replica->cache.num_blocks),
              replica->cache.block_size);

  const int bs = replica->cache.block_size;
  const int bps = (context + decode_steps + 3 + bs - 1) / bs + 1;  // blocks per sequence
  if (int64_t{max_batch} * bps > replica->cache.num_blocks) {
    return absl::ResourceExhaustedError(absl::StrCat("the KV cache (", replica->cache.num_blocks,
                                                     " blocks) cannot hold ", max_batch,
                                                     " sequences of ", bps, " blocks"));
  }
  std::mt19937 rng(1);
  Sampler sampler;
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  auto step = [&](const v1::StepPlan& plan) -> absl::StatusOr<double> {
    std::vector<SamplingRow> rows(plan.logits_indices_size());
    for (SamplingRow& r : rows) r.params = &greedy;
    const auto t0 = Clock::now();
    RETURN_IF_ERROR(ex.Forward(plan));
    RETURN_IF_ERROR(ex.Sample(rows, sampler).status());  // waits for the GPU
    return Seconds(t0, Clock::now());
  };

  // (b) Prefill: cache `context` tokens for sequences [0, max_batch). Decode
  // reads that cache, so it runs only after a complete prefill.
  const int per_step = std::max(1, replica->sched.max_num_batched_tokens / context);
  const absl::Status prefill = [&]() -> absl::Status {
    std::vector<double> prefill_rates;
    for (int first = 0; first < max_batch; first += per_step) {
      const int seqs = std::min(per_step, max_batch - first);
      ASSIGN_OR_RETURN(const double s,
                       step(PrefillPlan(first, seqs, context, bs, bps, cfg.vocab_size, rng)));
      if (first > 0 || max_batch <= per_step) prefill_rates.push_back(seqs * context / s);
    }
    const double prefill_tps = Median(prefill_rates);
    const double prefill_flops = prefill_tps * 2.0 * params;
    out["prefill"] = {{"tokens_per_step", per_step * context},
                      {"tokens_per_s", prefill_tps},
                      {"TFLOPS_2x_params", prefill_flops / 1e12}};
    if (gemm > 0) out["prefill"]["fraction_of_gemm"] = prefill_flops / gemm;
    std::printf(
        "\nprefill, %d-token steps: %.0f tokens/s = %.0f TFLOP/s (2 x params) = %.0f%% of "
        "the GEMM rate\n",
        per_step * context, prefill_tps, prefill_flops / 1e12,
        gemm > 0 ? 100 * prefill_flops / gemm : 0.0);
    return absl::OkStatus();
  }();
  if (!prefill.ok()) results.Fail("prefill", prefill);
  results.Flush();

  // (a) Decode, one batch size at a time (each written as it completes).
  std::printf("\n%6s %8s %12s %12s %8s %14s\n", "batch", "context", "step ms", "roofline ms",
              "ratio", "tokens/s");
  out["decode"] = nlohmann::json::array();
  for (int batch : prefill.ok() ? batches : std::vector<int>{}) {
    std::vector<double> times;
    absl::Status st;
    for (int i = 0; i < 3 + decode_steps && st.ok(); ++i) {
      absl::StatusOr<double> s = step(DecodePlan(batch, context, i, bs, bps, cfg.vocab_size, rng));
      if (!s.ok()) {
        st = s.status();
      } else if (i >= 3) {
        times.push_back(*s);
      }
    }
    if (!st.ok()) {
      results.Fail(absl::StrCat("decode_batch_", batch), st);
      continue;
    }
    const double t = Median(times);
    const double bytes = static_cast<double>(step_weight_bytes) +
                         static_cast<double>(batch) * (context + 1) * kv_bytes_per_token;
    const double roof = bytes / bandwidth;
    out["decode"].push_back({{"batch", batch},
                             {"context", context},
                             {"step_ms", t * 1e3},
                             {"roofline_ms", roof * 1e3},
                             {"ratio_to_roofline", t / roof},
                             {"bytes_per_step", bytes},
                             {"tokens_per_s", batch / t}});
    std::printf("%6d %8d %12.3f %12.3f %8.2f %14.0f\n", batch, context, t * 1e3, roof * 1e3,
                t / roof, batch / t);
    std::fflush(stdout);
    out["executor"] = {{"graph_steps", ex.stats().graph_steps},
                       {"eager_steps", ex.stats().eager_steps},
                       {"graphs_captured", ex.stats().graphs_captured}};
    results.Flush();
  }

  // (c) Offline throughput through the engine.
  const int requests = absl::GetFlag(FLAGS_offline_requests);
  const absl::Status offline = [&]() -> absl::Status {
    if (requests <= 0) return absl::OkStatus();
    Engine& engine = *replica->engine;
    const int in_len = absl::GetFlag(FLAGS_input_len);
    const int out_len = absl::GetFlag(FLAGS_output_len);
    std::uniform_int_distribution<int> tok(3, cfg.vocab_size - 1);
    const auto t0 = Clock::now();
    for (int i = 0; i < requests; ++i) {
      EngineRequest r;
      r.request_id = absl::StrCat("req-", i);
      r.prompt_token_ids.resize(in_len);
      for (int32_t& t : r.prompt_token_ids) t = tok(rng);
      r.params.temperature = 0.0f;
      r.params.max_tokens = out_len;
      r.params.ignore_eos = true;
      RETURN_IF_ERROR(engine.AddRequest(std::move(r)));
    }
    int64_t generated = 0;
    while (engine.HasUnfinished()) {
      ASSIGN_OR_RETURN(std::vector<RequestOutput> outputs, engine.Step());
      for (const RequestOutput& o2 : outputs)
        generated += static_cast<int64_t>(o2.new_tokens.size());
    }
    const double s = Seconds(t0, Clock::now());
    out["offline"] = {{"requests", requests},
                      {"input_len", in_len},
                      {"output_len", out_len},
                      {"seconds", s},
                      {"output_tokens", generated},
                      {"output_tokens_per_s", generated / s},
                      {"total_tokens_per_s", (generated + int64_t{requests} * in_len) / s},
                      {"engine_steps", engine.stats().steps}};
    std::printf(
        "\noffline: %d requests x (%d in + %d out) in %.2f s: %.0f output tokens/s, %.0f "
        "total tokens/s, %lld steps\n",
        requests, in_len, out_len, s, generated / s, (generated + int64_t{requests} * in_len) / s,
        static_cast<long long>(engine.stats().steps));
    return absl::OkStatus();
  }();
  if (!offline.ok()) results.Fail("offline", offline);
  results.Flush();
  return absl::OkStatus();
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures reach a pipe (tee) as they come
  tessera::ParseCommandLine(argc, argv,
                            "Tessera on one GPU vs the GPU's copy bandwidth and GEMM rate.\n"
                            "  gpu_bench --dummy llama3-8b [--max-num-batched-tokens 8192] "
                            "[--max-model-len 1024] [--json FILE]   (see bench/gpu/run.sh)");
  if (auto s = tessera::InitLogging(absl::GetFlag(FLAGS_log_level), "gpu_bench"); !s.ok()) {
    std::fprintf(stderr, "gpu_bench: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (tessera::UsableCudaDevices() == 0) {
    std::fprintf(stderr, "gpu_bench: no usable CUDA device: %s\n",
                 tessera::CudaUnavailableReason().c_str());
    return 3;
  }
  tessera::Results results(absl::GetFlag(FLAGS_json));
  absl::Status s = tessera::Run(results);
  if (!s.ok()) results.Fail("setup", s);
  results.Flush();
  return results.failed() ? 1 : 0;
}
