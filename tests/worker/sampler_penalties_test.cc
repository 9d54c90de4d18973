// The CPU sampler (worker/exec/sampler.h): repetition/presence/frequency
// penalties, logprobs, per-row seeds independent of the batch, non-finite
// logits and an empty batch.
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/sampler_test_util.h"
#include "worker/exec/sampler.h"

namespace tessera {
namespace {

using sampler_testing::Greedy;
using sampler_testing::kInf;
using sampler_testing::kNaN;
using sampler_testing::LogSoftmax64;
using sampler_testing::Random;
using sampler_testing::RandomLogits;
using sampler_testing::Row;
using sampler_testing::SampleOne;

TEST(SamplerTest, PenaltiesChangeLogitsAsSpecified) {
  Sampler sampler;
  const std::vector<float> base = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
  const std::vector<int32_t> prompt = {0, 1, 1, 99};     // 99: outside the vocab, ignored
  const std::vector<int32_t> output = {1, 2, 2, 5, -1};  // -1: ignored
  auto run = [&](const SamplingParams& p) {
    std::vector<float> logits = base;
    SamplingRow row = Row(p);
    row.prompt_tokens = prompt;
    row.output_tokens = output;
    row.step = static_cast<int64_t>(output.size());
    std::vector<SamplingRow> rows = {row};
    sampler.Sample(logits.data(), static_cast<int64_t>(logits.size()), rows);
    return logits;
  };

  SamplingParams rep = Greedy();
  rep.repetition_penalty = 2.0f;  // once per distinct token of prompt + output
  EXPECT_THAT(run(rep), ::testing::ElementsAre(1.0f, -2.0f, 0.25f, 3.0f, -2.0f, 0.5f));

  SamplingParams presence = Greedy();
  presence.presence_penalty = 0.5f;  // output tokens only, once each
  EXPECT_THAT(run(presence), ::testing::ElementsAre(2.0f, -1.5f, 0.0f, 3.0f, -2.0f, 0.5f));

  SamplingParams frequency = Greedy();
  frequency.frequency_penalty = 0.25f;  // per occurrence in the output
  EXPECT_THAT(run(frequency), ::testing::ElementsAre(2.0f, -1.25f, 0.0f, 3.0f, -2.0f, 0.75f));

  SamplingParams all = Greedy();
  all.repetition_penalty = 2.0f;
  all.presence_penalty = 0.5f;
  all.frequency_penalty = 0.25f;
  // Repetition first, then -= frequency * count + presence.
  EXPECT_THAT(run(all), ::testing::ElementsAre(1.0f, -2.75f, -0.75f, 3.0f, -2.0f, -0.25f));

  // A penalty can change the greedy choice.
  SamplingParams strong = Greedy();
  strong.repetition_penalty = 10.0f;
  std::vector<float> logits = {5.0f, 4.0f};
  SamplingRow row = Row(strong);
  std::vector<int32_t> seen = {0};
  row.output_tokens = seen;
  std::vector<SamplingRow> rows = {row};
  EXPECT_EQ(sampler.Sample(logits.data(), 2, rows)[0].token, 1);
}

TEST(SamplerTest, LogprobsMatchFloat64LogSoftmaxAfterPenalties) {
  Sampler sampler;
  const int64_t vocab = 1000;
  for (float temperature : {0.0f, 0.8f}) {
    std::vector<float> logits = RandomLogits(vocab, 9);
    SamplingParams p = Random(temperature);
    p.top_k = 10;
    p.logprobs = 5;
    p.repetition_penalty = 1.3f;
    const std::vector<int32_t> output = {3, 17, 17, 400};
    // Reference: the penalised logits, then log-softmax in double.
    std::vector<float> penalised = logits;
    for (int32_t t : {3, 17, 400}) {
      penalised[t] = penalised[t] > 0 ? penalised[t] / 1.3f : penalised[t] * 1.3f;
    }
    const std::vector<double> ref = LogSoftmax64(penalised);
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return penalised[a] > penalised[b]; });
    for (uint64_t seed = 0; seed < 20; ++seed) {
      SamplingRow row = Row(p, seed, 4);
      row.output_tokens = output;
      SampleResult r = SampleOne(sampler, logits, row);
      EXPECT_NEAR(r.logprob, ref[r.token], 1e-5);
      ASSERT_EQ(r.top_logprobs.size(), 5u);
      for (int j = 0; j < 5; ++j) {
        EXPECT_EQ(r.top_logprobs[j].first, order[j]);
        EXPECT_NEAR(r.top_logprobs[j].second, ref[order[j]], 1e-5);
      }
    }
  }
}

TEST(SamplerTest, SeededSequencesIgnoreBatchCompositionAndOrder) {
  Sampler sampler;
  const int64_t vocab = 64;
  const int steps = 40;
  SamplingParams plain = Random(1.0f);
  SamplingParams nucleus = Random(0.9f);
  nucleus.top_p = 0.8f;
  nucleus.top_k = 20;
  SamplingParams greedy = Greedy();
  SamplingParams top_p_min_p = Random(1.1f);
  top_p_min_p.top_p = 0.7f;
  top_p_min_p.min_p = 0.02f;
  const std::vector<const SamplingParams*> params = {&plain, &nucleus, &plain, &greedy,
                                                     &top_p_min_p};
  const std::vector<uint64_t> seeds = {11, 12, 13, 14, 15};
  // The logits of sequence s at step t are a fixed function of (s, t).
  auto logits_of = [&](size_t s, int t) { return RandomLogits(vocab, 1000 * s + t, 2.0f); };

  // Alone, one sequence per call.
  std::vector<std::vector<int32_t>> alone(seeds.size());
  for (size_t s = 0; s < seeds.size(); ++s) {
    for (int t = 0; t < steps; ++t) {
      alone[s].push_back(SampleOne(sampler, logits_of(s, t), Row(*params[s], seeds[s], t)).token);
    }
  }
  // Together, in two orders, with unrelated rows mixed in.
  for (const std::vector<size_t>& order :
       {std::vector<size_t>{0, 1, 2, 3, 4}, std::vector<size_t>{3, 4, 1, 0, 2}}) {
    SamplingParams other = Random(1.2f);
    for (int t = 0; t < steps; ++t) {
      std::vector<float> batch;
      std::vector<SamplingRow> rows;
      std::vector<int> which;
      for (size_t s : order) {
        std::vector<float> extra = RandomLogits(vocab, 77 + t + s, 2.0f);
        batch.insert(batch.end(), extra.begin(), extra.end());
        rows.push_back(Row(other, 999 + t, t));
        which.push_back(-1);
        std::vector<float> l = logits_of(s, t);
        batch.insert(batch.end(), l.begin(), l.end());
        rows.push_back(Row(*params[s], seeds[s], t));
        which.push_back(static_cast<int>(s));
      }
      std::vector<SampleResult> results = sampler.Sample(batch.data(), vocab, rows);
      for (size_t i = 0; i < rows.size(); ++i) {
        if (which[i] >= 0) {
          EXPECT_EQ(results[i].token, alone[which[i]][t]) << "seq " << which[i];
        }
      }
    }
  }
}

TEST(SamplerTest, DifferentSeedsGiveDifferentDraws) {
  Sampler sampler;
  const std::vector<float> flat(100, 0.0f);
  SamplingParams p = Random(1.0f);
  int differ = 0;
  for (int64_t step = 0; step < 200; ++step) {
    const int32_t a = SampleOne(sampler, flat, Row(p, 1, step)).token;
    const int32_t b = SampleOne(sampler, flat, Row(p, 2, step)).token;
    EXPECT_EQ(a, SampleOne(sampler, flat, Row(p, 1, step)).token);  // and repeatable
    differ += a != b;
  }
  EXPECT_GT(differ, 180);  // ~198 expected with 100 equally likely tokens
}

TEST(SamplerTest, NaNAndInfinity) {
  Sampler sampler;
  // NaN is never chosen.
  const std::vector<float> with_nan = {kNaN, 1.0f, kNaN, 0.5f};
  EXPECT_EQ(SampleOne(sampler, with_nan, Row(Greedy())).token, 1);
  SamplingParams p = Random(1.0f);
  p.logprobs = 2;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    SampleResult r = SampleOne(sampler, with_nan, Row(p, seed));
    EXPECT_TRUE(r.token == 1 || r.token == 3) << r.token;
    EXPECT_FALSE(std::isnan(r.logprob));
    ASSERT_EQ(r.top_logprobs.size(), 2u);
    EXPECT_EQ(r.top_logprobs[0].first, 1);
    EXPECT_EQ(r.top_logprobs[1].first, 3);
  }
  // +inf is the most likely; two of them share the mass.
  const std::vector<float> with_inf = {1.0f, kInf, 2.0f, kInf};
  EXPECT_EQ(SampleOne(sampler, with_inf, Row(Greedy())).token, 1);
  for (uint64_t seed = 0; seed < 100; ++seed) {
    SampleResult r = SampleOne(sampler, with_inf, Row(p, seed));
    EXPECT_TRUE(r.token == 1 || r.token == 3) << r.token;
    EXPECT_NEAR(r.logprob, std::log(0.5), 1e-6);
  }
  // Nothing finite: token 0, logprob -inf, deterministically.
  const std::vector<float> nothing = {kNaN, -kInf, kNaN};
  EXPECT_EQ(SampleOne(sampler, nothing, Row(Greedy())).token, 0);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    SampleResult r = SampleOne(sampler, nothing, Row(p, seed));
    EXPECT_EQ(r.token, 0);
    EXPECT_EQ(r.logprob, -kInf);
    ASSERT_EQ(r.top_logprobs.size(), 2u);
    EXPECT_EQ(r.top_logprobs[0].second, -kInf);
  }
  SamplingParams nucleus = Random(1.0f);
  nucleus.top_p = 0.5f;
  nucleus.top_k = 2;
  nucleus.min_p = 0.1f;
  EXPECT_EQ(SampleOne(sampler, nothing, Row(nucleus, 3)).token, 0);
}

TEST(SamplerTest, EmptyBatch) {
  Sampler sampler;
  EXPECT_TRUE(sampler.Sample(nullptr, 10, {}).empty());
}

}  // namespace
}  // namespace tessera
