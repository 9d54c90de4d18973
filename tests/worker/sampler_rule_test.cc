// The worker's Sampler follows the one sampling rule (kernels/ops.h, Sample):
// after its penalties, it picks exactly the token that the CUDA kernel's
// algorithm (run through its host twin, kernels/cpu/sampling_twin.h) picks
// from the same penalised logits; and asking for logprobs never changes the
// token a seeded row draws.
#include <cstdint>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cpu/sampling_twin.h"
#include "kernels/sampling_rule.h"
#include "worker/exec/sampler.h"

namespace tessera {
namespace {

struct Case {
  SamplingParams params;
  std::vector<int32_t> prompt, output;
  std::vector<float> logits;
  uint64_t seed = 0;
};

Case RandomCase(std::mt19937& rng, int64_t vocab, int i) {
  Case c;
  std::normal_distribution<float> normal(0.f, 3.f);
  c.logits.resize(vocab);
  for (float& x : c.logits) x = normal(rng);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));
  for (int j = 0; j < 12; ++j) c.prompt.push_back(token(rng));
  for (int j = 0; j < i % 20; ++j) c.output.push_back(token(rng));
  SamplingParams& p = c.params;
  const float temperatures[] = {0.f, 0.5f, 1.f, 1.3f};
  p.temperature = temperatures[i % 4];
  p.top_k = (i / 4) % 3 == 0 ? -1 : 1 + (i % 50);
  p.top_p = (i / 12) % 2 == 0 ? 1.f : 0.85f;
  p.min_p = (i / 24) % 2 == 0 ? 0.f : 0.05f;
  p.repetition_penalty = (i % 5 == 0) ? 1.f : 1.3f;
  p.frequency_penalty = (i % 7 == 0) ? 0.f : 0.4f;
  p.presence_penalty = (i % 3 == 0) ? 0.f : -0.6f;
  c.seed = (static_cast<uint64_t>(rng()) << 32) | rng();
  return c;
}

// The penalties as sampler.h specifies them, applied independently.
std::vector<float> Penalised(const Case& c) {
  std::vector<float> x = c.logits;
  const SamplingParams& p = c.params;
  const int64_t vocab = static_cast<int64_t>(x.size());
  std::vector<int> seen(vocab, 0), counts(vocab, 0);
  for (int32_t t : c.prompt) seen[t] = 1;
  for (int32_t t : c.output) {
    seen[t] = 1;
    ++counts[t];
  }
  for (int64_t t = 0; t < vocab; ++t) {
    if (seen[t] && p.repetition_penalty != 1.f) {
      x[t] = x[t] > 0.f ? x[t] / p.repetition_penalty : x[t] * p.repetition_penalty;
    }
    if (counts[t] > 0 && (p.frequency_penalty != 0.f || p.presence_penalty != 0.f)) {
      x[t] -= p.frequency_penalty * static_cast<float>(counts[t]) + p.presence_penalty;
    }
  }
  return x;
}

SamplingRow RowOf(const Case& c, const SamplingParams& params) {
  SamplingRow row;
  row.params = &params;
  row.prompt_tokens = c.prompt;
  row.output_tokens = c.output;
  row.seed = c.seed;
  row.step = static_cast<int64_t>(c.output.size());
  return row;
}

TEST(SamplerRuleTest, PicksTheKernelsTokenAfterPenaltiesWithOrWithoutLogprobs) {
  std::mt19937 rng(1510);
  const int64_t vocab = 997;
  const int n = 240;
  std::vector<Case> cases;
  for (int i = 0; i < n; ++i) cases.push_back(RandomCase(rng, vocab, i));
  // One batch without logprobs, one with 5 logprobs per row.
  std::vector<SamplingParams> with_logprobs;
  for (const Case& c : cases) {
    with_logprobs.push_back(c.params);
    with_logprobs.back().logprobs = 5;
  }
  std::vector<float> batch_a, batch_b;
  std::vector<SamplingRow> rows_a, rows_b;
  for (int i = 0; i < n; ++i) {
    batch_a.insert(batch_a.end(), cases[i].logits.begin(), cases[i].logits.end());
    rows_a.push_back(RowOf(cases[i], cases[i].params));
    rows_b.push_back(RowOf(cases[i], with_logprobs[i]));
  }
  batch_b = batch_a;
  Sampler sampler;
  const std::vector<SampleResult> a = sampler.Sample(batch_a.data(), vocab, rows_a);
  const std::vector<SampleResult> b = sampler.Sample(batch_b.data(), vocab, rows_b);
  int drawn_not_argmax = 0;
  for (int i = 0; i < n; ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(absl::StrCat("row ", i, " T ", c.params.temperature, " top_k ", c.params.top_k,
                              " top_p ", c.params.top_p, " min_p ", c.params.min_p));
    EXPECT_EQ(a[i].token, b[i].token) << "logprobs changed the token";
    EXPECT_EQ(b[i].top_logprobs.size(), 5u);
    const std::vector<float> x = Penalised(c);
    ops::sampling::RowParams p;
    p.temperature = c.params.temperature;
    p.top_k = c.params.top_k;
    p.top_p = c.params.top_p;
    p.min_p = c.params.min_p;
    p.seed = c.seed;
    p.step = static_cast<int64_t>(c.output.size());
    const ops::sampling::RowResult twin = ops::cpu::SampleRowTwin(x.data(), vocab, p);
    EXPECT_EQ(a[i].token, twin.token) << "the CPU sampler and the kernel's rule differ";
    EXPECT_NEAR(b[i].logprob, twin.logprob, 1e-3f);
    p.temperature = 0.f;
    drawn_not_argmax += twin.token != ops::cpu::SampleRowTwin(x.data(), vocab, p).token;
  }
  EXPECT_GT(drawn_not_argmax, n / 10) << "the cases hardly exercise the draw";
}

}  // namespace
}  // namespace tessera
