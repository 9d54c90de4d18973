// Decode graphs per context bucket and the CPU-sampled rows' gather, through
// the CUDA executor on a GPU (label gpu; skips without one). The "tiny" dummy
// model with max_model_len 2048 in blocks of 16 has context buckets of 32, 64
// and 128 blocks (512, 1024, 2048 tokens). Decode steps whose longest context
// falls in each bucket must give the eager step's logits, capture one graph
// per new (batch, context) shape on its first step and replay it on the next
// — not one graph as wide as max_model_len. Rows with penalties are gathered
// on the device for the CPU sampler and must sample as the CPU sampler does
// on the same logits.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/worker/gpu_test_util.h"
#include "worker/comm/communicator.h"
#include "worker/exec/sampler.h"
#include "worker/replica.h"

namespace tessera {
namespace {

constexpr int kBlockSize = 16;
constexpr int kBlocksPerSeq = 128;  // sequence s owns blocks [s * 128, s * 128 + 128)

struct Chunk {
  int seq;
  int start;  // context before this step
  int len;    // tokens computed this step
};

// A step of `chunks`, each sampling its last token; tokens drawn from rng.
v1::StepPlan Plan(const std::vector<Chunk>& chunks, int vocab, std::mt19937& rng) {
  v1::StepPlan p;
  p.set_kind(v1::StepPlan::KIND_FORWARD);
  int width = 0, max_q = 0, max_s = 0;
  for (const Chunk& c : chunks) {
    width = std::max(width, (c.start + c.len + kBlockSize - 1) / kBlockSize);
    max_q = std::max(max_q, c.len);
    max_s = std::max(max_s, c.start + c.len);
  }
  p.set_max_blocks_per_seq(width);
  p.set_max_query_len(max_q);
  p.set_max_seq_len(max_s);
  p.add_query_start_loc(0);
  for (const Chunk& c : chunks) {
    for (int pos = c.start; pos < c.start + c.len; ++pos) {
      p.add_token_ids(std::uniform_int_distribution<int>(0, vocab - 1)(rng));
      p.add_positions(pos);
      p.add_slot_mapping(int64_t{c.seq} * kBlocksPerSeq * kBlockSize + pos);
    }
    p.add_query_start_loc(p.token_ids_size());
    p.add_seq_lens(c.start + c.len);
    for (int j = 0; j < width; ++j) p.add_block_tables(c.seq * kBlocksPerSeq + j);
    p.add_logits_indices(p.token_ids_size() - 1);
  }
  return p;
}

struct DecodeRun {
  std::vector<std::vector<float>> logits;  // per decode step
  std::vector<int32_t> cpu_sampled;        // the last step's tokens, through Sample
  std::vector<float> last_logits;
  ExecutorStats startup, end;
};

DecodeRun Decode(bool graphs) {
  DecodeRun run;
  ReplicaOptions o;
  o.dummy_preset = "tiny";
  o.dummy_seed = 11;
  o.device = "cuda";
  o.dtype = "float32";
  o.cuda_graphs = graphs;
  o.cache.block_size = kBlockSize;
  o.cache.num_blocks = 3 * kBlocksPerSeq;
  o.sched.max_model_len = kBlocksPerSeq * kBlockSize;
  o.sched.max_num_seqs = 4;
  o.sched.max_num_batched_tokens = 2048;
  auto replica = BuildReplica(o, MakeSingleProcessCommunicator());
  EXPECT_TRUE(replica.ok()) << replica.status();
  if (!replica.ok()) return run;
  ModelExecutor& ex = *(*replica)->executor;
  run.startup = ex.stats();
  const int vocab = (*replica)->config.vocab_size;
  std::mt19937 rng(23);
  // Contexts of 300, 900 and 1800 tokens: the smallest, middle and widest
  // context bucket.
  std::vector<int> lens = {299, 899, 1799};
  for (int s = 0; s < 3; ++s) {
    Tensor out;
    EXPECT_TRUE(ex.Execute(Plan({{s, 0, lens[s]}}, vocab, rng), out).ok());
  }
  // Two decode steps of sequence 0, then of 0-1, then of 0-2.
  for (int batch = 1; batch <= 3; ++batch) {
    for (int step = 0; step < 2; ++step) {
      std::vector<Chunk> chunks;
      for (int s = 0; s < batch; ++s) chunks.push_back({s, lens[s]++, 1});
      Tensor out;
      const absl::Status st = ex.Execute(Plan(chunks, vocab, rng), out);
      EXPECT_TRUE(st.ok()) << st;
      if (!st.ok()) return run;
      run.logits.emplace_back(out.data_as<float>(), out.data_as<float>() + out.numel());
    }
  }
  // The last step again through Sample: row 0 on the GPU, rows 1 and 2
  // (penalties) gathered for the CPU sampler.
  SamplingParams gpu, repetition, presence;
  gpu.temperature = repetition.temperature = presence.temperature = 0.0f;
  repetition.repetition_penalty = 1.5f;
  presence.presence_penalty = 1.5f;
  const std::vector<int32_t> history = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<SamplingRow> rows(3);
  const SamplingParams* params[] = {&gpu, &repetition, &presence};
  for (int r = 0; r < 3; ++r) {
    rows[r].params = params[r];
    rows[r].output_tokens = history;
    rows[r].step = static_cast<int64_t>(history.size());
  }
  Sampler sampler;
  auto sampled = ex.Sample(rows, sampler);
  EXPECT_TRUE(sampled.ok()) << sampled.status();
  if (sampled.ok()) {
    for (const SampleResult& r : *sampled) run.cpu_sampled.push_back(r.token);
  }
  run.last_logits = run.logits.back();
  run.end = ex.stats();
  return run;
}

TEST(GpuDecodeGraphsTest, OneGraphPerContextBucketWithTheEagerLogits) {
  TESSERA_REQUIRE_GPU();
  const DecodeRun eager = Decode(false);
  const DecodeRun graphs = Decode(true);
  ASSERT_EQ(eager.logits.size(), 6u);
  ASSERT_EQ(graphs.logits.size(), 6u);
  for (size_t step = 0; step < eager.logits.size(); ++step) {
    ASSERT_EQ(eager.logits[step].size(), graphs.logits[step].size());
    double max_abs = 0, max_diff = 0;
    for (size_t i = 0; i < eager.logits[step].size(); ++i) {
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(eager.logits[step][i])));
      max_diff = std::max(
          max_diff, std::fabs(static_cast<double>(graphs.logits[step][i]) - eager.logits[step][i]));
    }
    ASSERT_GT(max_abs, 1e-3) << "degenerate logits at step " << step;
    // The split-K partition count differs (the bucket's vs the step's
    // max_seq_len): float32 rounding only.
    EXPECT_LE(max_diff, 1e-4 * max_abs) << "step " << step;
  }
  EXPECT_EQ(eager.end.graph_steps, 0);
  // Startup: batch buckets 1, 2, 4 at the smallest context bucket. Then
  // (2, 64 blocks) and (4, 128 blocks) are captured on their first step and
  // replayed on the second; (1, 32 blocks) replays from the start.
  EXPECT_EQ(graphs.startup.graphs_captured, 3);
  EXPECT_EQ(graphs.end.graphs_captured, 5);
  EXPECT_EQ(graphs.end.graph_steps, 4);
}

TEST(GpuDecodeGraphsTest, CpuSampledRowsMatchTheCpuSampler) {
  TESSERA_REQUIRE_GPU();
  for (bool graphs : {false, true}) {
    SCOPED_TRACE(graphs ? "graphs" : "eager");
    const DecodeRun run = Decode(graphs);
    ASSERT_EQ(run.cpu_sampled.size(), 3u);
    const int64_t vocab = static_cast<int64_t>(run.last_logits.size()) / 3;
    // The CPU sampler on the host copy of the same logits.
    SamplingParams repetition, presence;
    repetition.temperature = presence.temperature = 0.0f;
    repetition.repetition_penalty = 1.5f;
    presence.presence_penalty = 1.5f;
    const std::vector<int32_t> history = {1, 2, 3, 4, 5, 6, 7, 8};
    std::vector<SamplingRow> rows(2);
    rows[0].params = &repetition;
    rows[1].params = &presence;
    for (SamplingRow& r : rows) {
      r.output_tokens = history;
      r.step = static_cast<int64_t>(history.size());
    }
    std::vector<float> host(run.last_logits.begin() + vocab, run.last_logits.end());
    Sampler sampler;
    const std::vector<SampleResult> want = sampler.Sample(host.data(), vocab, rows);
    EXPECT_EQ(run.cpu_sampled[1], want[0].token);
    EXPECT_EQ(run.cpu_sampled[2], want[1].token);
    // Row 0 (GPU, greedy): the argmax of its logits.
    const auto row0 = run.last_logits.begin();
    EXPECT_EQ(run.cpu_sampled[0], std::max_element(row0, row0 + vocab) - row0);
  }
}

}  // namespace
}  // namespace tessera
