// Tensor parallelism changes nothing but the speed: on dummy models, the
// logits of a TP=N replica (this MPI job's ranks) equal those of the whole
// model on one rank within 1e-4 relative error, for a batch that mixes a
// prefill, a chunk over a cached prefix and decodes. Run under mpirun with
// 2 and 4 ranks.
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "gtest/gtest.h"
#include "worker/comm/make_communicator.h"
#include "worker/comm/mpi_communicator.h"
#include "worker/engine/step_plan.h"
#include "worker/model/dummy_presets.h"
#include "worker/model/llama.h"
#include "worker/model/weight_source.h"

namespace tessera {
namespace {

// Two forward steps over a paged cache: step 1 prefills three prompts
// (lengths 7, 13, 1), step 2 runs one decode token for each plus a 5-token
// chunk that attends to the first prompt's cached blocks.
std::vector<v1::StepPlan> MakePlans(int vocab) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> tok(0, vocab - 1);
  const int block = 4;
  std::vector<v1::StepPlan> plans(2);
  // Sequence b uses blocks [b*8, b*8+8).
  auto add_seq = [&](v1::StepPlan& p, int b, int start, int count, bool sample) {
    for (int pos = start; pos < start + count; ++pos) {
      p.add_token_ids(tok(rng));
      p.add_positions(pos);
      p.add_slot_mapping(int64_t{b * 8 + pos / block} * block + pos % block);
    }
    p.add_query_start_loc(p.token_ids_size());
    p.add_seq_lens(start + count);
    for (int i = 0; i < 8; ++i) p.add_block_tables(b * 8 + i);
    if (sample) p.add_logits_indices(p.token_ids_size() - 1);
  };
  const int lens[3] = {7, 13, 1};
  plans[0].add_query_start_loc(0);
  for (int b = 0; b < 3; ++b) add_seq(plans[0], b, 0, lens[b], true);
  plans[1].add_query_start_loc(0);
  for (int b = 0; b < 3; ++b) add_seq(plans[1], b, lens[b], 1, true);
  add_seq(plans[1], 3, 0, 5, true);  // a fresh sequence in block range 24..31
  for (auto& p : plans) {
    p.set_kind(v1::StepPlan::KIND_FORWARD);
    p.set_max_blocks_per_seq(8);
    int mq = 0, ms = 0;
    for (int b = 0; b < p.seq_lens_size(); ++b) {
      mq = std::max(mq, p.query_start_loc(b + 1) - p.query_start_loc(b));
      ms = std::max(ms, p.seq_lens(b));
    }
    p.set_max_query_len(mq);
    p.set_max_seq_len(ms);
  }
  // Every row's logits in step 2, not only the last of each sequence.
  plans[1].clear_logits_indices();
  for (int i = 0; i < plans[1].token_ids_size(); ++i) plans[1].add_logits_indices(i);
  return plans;
}

std::vector<std::vector<float>> RunPlans(const ModelConfig& config, Communicator& comm) {
  auto weights = MakeDummyWeightSource(/*seed=*/11);
  auto model = LlamaForCausalLM::Load(config, *weights, comm, DType::kFloat32);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  KvCache cache = KvCache::Allocate((*model)->CacheShape(/*num_blocks=*/32, /*block_size=*/4));
  std::vector<std::vector<float>> out;
  for (const v1::StepPlan& plan : MakePlans(config.vocab_size)) {
    Tensor logits = Tensor::Empty(DType::kFloat32, {plan.logits_indices_size(), config.vocab_size});
    absl::Status s = (*model)->Forward(ModelInputFromPlan(plan), cache, logits);
    EXPECT_TRUE(s.ok()) << s;
    const float* p = logits.data_as<float>();
    out.emplace_back(p, p + logits.numel());
  }
  return out;
}

void ExpectSameLogits(const ModelConfig& config) {
  auto comm = MakeMpiCommunicator();
  ASSERT_TRUE(comm.ok()) << comm.status();
  const auto tp = RunPlans(config, **comm);
  if ((*comm)->rank() != 0) return;
  auto single = MakeSingleProcessCommunicator();
  const auto ref = RunPlans(config, *single);
  ASSERT_EQ(tp.size(), ref.size());
  for (size_t step = 0; step < ref.size(); ++step) {
    ASSERT_EQ(tp[step].size(), ref[step].size());
    double max_abs = 0, max_diff = 0;
    for (size_t i = 0; i < ref[step].size(); ++i) {
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(ref[step][i])));
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(tp[step][i]) - ref[step][i]));
    }
    ASSERT_GT(max_abs, 0.1) << "degenerate logits at step " << step;
    // Relative to the largest logit: TP only reorders float32 sums.
    EXPECT_LE(max_diff, 1e-4 * max_abs)
        << "step " << step << " at TP=" << (*comm)->size() << ": max |diff| " << max_diff
        << ", max |logit| " << max_abs;
  }
}

TEST(TpLogitsTest, GroupedQueryAttentionModel) {
  // The tiny preset, widened to 8 query / 4 KV heads so it splits 4 ways.
  auto config = DummyModelConfig("tiny");
  ASSERT_TRUE(config.ok());
  config->hidden_size = 128;
  config->num_attention_heads = 8;
  config->num_key_value_heads = 4;
  config->head_dim = 16;
  config->intermediate_size = 256;
  ExpectSameLogits(*config);
}

TEST(TpLogitsTest, UnevenSplitsWithBiasAndQkNorm) {
  // smollm2-like head layout (9 heads, 3 KV heads) with an odd intermediate
  // size and vocabulary, q/k/v/o biases and Qwen3 q/k norms: every split uneven.
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  auto config = DummyModelConfig("tiny");
  ASSERT_TRUE(config.ok());
  config->num_attention_heads = 9;
  config->num_key_value_heads = 3;
  config->head_dim = 8;
  config->hidden_size = 72;
  config->intermediate_size = 101;
  config->vocab_size = 509;
  config->model_type = "qwen3";
  config->architecture = "Qwen3ForCausalLM";
  config->attention_bias = true;
  config->o_proj_bias = true;
  config->qk_norm = true;
  if (size > 3) {
    auto comm = MakeMpiCommunicator();
    ASSERT_TRUE(comm.ok());
    auto weights = MakeDummyWeightSource(1);
    auto model = LlamaForCausalLM::Load(*config, *weights, **comm, DType::kFloat32);
    ASSERT_FALSE(model.ok());
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(model.status().message().find("num_key_value_heads"), std::string::npos)
        << model.status();
    return;
  }
  ExpectSameLogits(*config);
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  auto session = tessera::MpiSession::Init(&argc, &argv);  // MPI_Finalize when it goes
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().ToString().c_str());
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int result = RUN_ALL_TESTS();
  // A failure on any rank fails the job.
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  session->reset();
  return worst;
}
