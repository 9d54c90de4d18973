// Parallel sampling in the Scheduler (n > 1): the fork step, shared KV with
// copy-on-write, sequence-slot reservation, aborts and preemption of forked
// choices. A fake model keeps "KV" as the token id written at each slot,
// runs the plan's block copies first, and checks every read, so a choice that
// reads another's KV (a missing or late copy) fails the test.
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scheduler_stop.h"
#include "worker/engine/scheduler.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

constexpr int32_t kEos = 2;

SchedulerConfig Config(int max_seqs = 8, int budget = 64) {
  SchedulerConfig c;
  c.max_num_batched_tokens = budget;
  c.max_num_seqs = max_seqs;
  c.max_model_len = 128;
  c.max_waiting = 64;
  return c;
}

CacheConfig Cache(int num_blocks, bool prefix_caching = true) {
  CacheConfig c;
  c.block_size = 4;
  c.num_blocks = num_blocks;
  c.enable_prefix_caching = prefix_caching;
  return c;
}

std::unique_ptr<Sequence> Req(const std::string& id, int prompt_len, int n, int max_tokens = 6) {
  std::vector<int32_t> prompt(prompt_len);
  std::iota(prompt.begin(), prompt.end(), 10);
  SamplingParams params;
  params.max_tokens = max_tokens;
  params.n = n;
  return std::make_unique<Sequence>(id, SeqId(0), std::move(prompt), params);
}

using Key = std::pair<std::string, int>;  // (request id, choice)
Key K(std::string id, int choice) { return {std::move(id), choice}; }

class ForkHarness {
 public:
  ForkHarness(const SchedulerConfig& config, const CacheConfig& cache)
      : sched(config, cache),
        stop_(std::vector<int32_t>{kEos}, config.max_model_len),
        kv_(static_cast<size_t>(cache.num_blocks) * cache.block_size, -1) {}

  // Choice c's token after `seq`'s tokens: depends on both, never EOS.
  static int32_t Token(const Sequence& seq, int choice) {
    return 100 + (seq.last_token() * 31 + seq.num_tokens() * 7 + choice * 101) % 400;
  }

  std::vector<SeqOutput> Step() {
    const SchedulerOutput& plan = sched.Schedule();
    for (const BlockCopy& c : plan.block_copies) {
      std::copy_n(kv_.begin() + c.src * 4, 4, kv_.begin() + c.dst * 4);
    }
    copies += static_cast<int>(plan.block_copies.size());
    std::vector<int32_t> sampled;
    max_batch = std::max(max_batch, static_cast<int>(plan.seqs.size()));
    for (const ScheduledSeq& s : plan.seqs) {
      const Sequence& seq = *s.seq;
      for (int pos = 0; pos < s.start; ++pos) {
        EXPECT_EQ(Slot(seq, pos), seq.all_tokens()[pos])
            << seq.request_id() << "/" << seq.choice_index() << " reads wrong KV at " << pos;
      }
      for (int pos = s.start; pos < s.start + s.num_tokens; ++pos) {
        Slot(seq, pos) = seq.all_tokens()[pos];
      }
      if (!s.sample) continue;
      sampled.push_back(Token(seq, seq.choice_index()));
      for (int c = 1; c <= s.forks; ++c) sampled.push_back(Token(seq, c));
    }
    EXPECT_EQ(static_cast<int>(sampled.size()), plan.num_sampled);
    std::vector<SeqOutput> v = testing::FinishStopped(sched, stop_, sched.Update(plan, sampled));
    const absl::Status inv = sched.CheckInvariants();
    EXPECT_TRUE(inv.ok()) << inv;
    for (const SeqOutput& o : v) Record(o);
    return v;
  }

  void Record(const SeqOutput& o) {
    auto& toks = tokens[K(o.request_id, o.index)];
    toks.insert(toks.end(), o.new_tokens.begin(), o.new_tokens.end());
    if (o.finish_reason != FinishReason::kNone) {
      EXPECT_FALSE(finished.contains({o.request_id, o.index})) << "two final outputs";
      finished[K(o.request_id, o.index)] = o;
    }
  }

  void RunToCompletion(int max_steps = 2000) {
    for (int i = 0; i < max_steps && sched.has_unfinished(); ++i) Step();
    ASSERT_FALSE(sched.has_unfinished());
    for (const SeqOutput& o : sched.TakeAbortedOutputs()) Record(o);
  }

  Scheduler sched;
  std::map<Key, std::vector<int32_t>> tokens;
  std::map<Key, SeqOutput> finished;
  int copies = 0;
  int max_batch = 0;

 private:
  int32_t& Slot(const Sequence& seq, int pos) {
    const int32_t block = seq.block_table().at(pos / 4);
    return kv_[static_cast<size_t>(block) * 4 + pos % 4];
  }
  const StopChecker stop_;
  std::vector<int32_t> kv_;
};

TEST(SchedulerForkTest, PrefillOnceThenOneDecodeBatchOfAllChoices) {
  for (const int prompt_len : {10, 8}) {  // a partial last block, and whole blocks
    ForkHarness h(Config(), Cache(64));
    ASSERT_TRUE(h.sched.AddRequest(Req("r", prompt_len, /*n=*/4)).ok());
    const SchedulerOutput& first = h.sched.Schedule();
    ASSERT_EQ(first.seqs.size(), 1u);
    EXPECT_EQ(first.seqs[0].num_tokens, prompt_len);  // the prompt runs once
    EXPECT_EQ(first.seqs[0].forks, 3);
    EXPECT_EQ(first.num_sampled, 4);
    h.sched.AbandonStep();
    std::vector<SeqOutput> outs = h.Step();
    ASSERT_EQ(outs.size(), 4u);
    for (int c = 0; c < 4; ++c) {
      EXPECT_EQ(outs[c].index, c);
      EXPECT_EQ(outs[c].new_tokens.size(), 1u);
      EXPECT_EQ(outs[c].completion_tokens, 1);
      EXPECT_EQ(outs[c].prompt_tokens, prompt_len);
    }
    EXPECT_EQ(h.sched.num_running(), 4);
    outs = h.Step();  // every choice decodes in one batch
    EXPECT_EQ(outs.size(), 4u);
    EXPECT_EQ(h.max_batch, 4);
    h.RunToCompletion();
    EXPECT_EQ(h.copies, prompt_len % 4 == 0 ? 0 : 3) << prompt_len;
    for (int c = 0; c < 4; ++c) {
      EXPECT_EQ(h.tokens[K("r", c)].size(), 6u);
      EXPECT_EQ(h.finished[K("r", c)].finish_reason, FinishReason::kLength);
      EXPECT_EQ(h.finished[K("r", c)].completion_tokens, 6);
    }
    EXPECT_NE(h.tokens[K("r", 0)], h.tokens[K("r", 1)]);
    EXPECT_EQ(h.sched.block_manager().num_used_blocks(), 0);
  }
}

TEST(SchedulerForkTest, ReservesASlotForEveryChoice) {
  ForkHarness h(Config(/*max_seqs=*/4), Cache(64));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", 10, /*n=*/3)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("b", 10, /*n=*/2)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("c", 10, /*n=*/1)).ok());
  h.Step();  // a takes 3 slots; b needs 2 of the 1 left and blocks the queue (fcfs)
  EXPECT_EQ(h.sched.num_running(), 3);
  EXPECT_EQ(h.sched.num_waiting(), 2);
  h.RunToCompletion();
  EXPECT_EQ(h.max_batch, 3);
  EXPECT_EQ(h.finished.size(), 6u);
}

TEST(SchedulerForkTest, RejectsNOutsideOneToMaxNumSeqs) {
  Scheduler sched(Config(/*max_seqs=*/4), Cache(64));
  for (const int n : {0, 5}) {
    const absl::Status s = sched.AddRequest(Req("x", 4, n));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(s.message(), HasSubstr("sampling.n must be in [1, 4]"));
  }
  EXPECT_TRUE(sched.AddRequest(Req("x", 4, 4)).ok());
}

TEST(SchedulerForkTest, AbortEndsEveryChoiceAndFreesEveryBlock) {
  for (const bool caching : {false, true}) {
    ForkHarness h(Config(), Cache(64, caching));
    ASSERT_TRUE(h.sched.AddRequest(Req("r", 10, /*n=*/3, /*max_tokens=*/20)).ok());
    ASSERT_TRUE(h.sched.AddRequest(Req("w", 6, /*n=*/2)).ok());
    h.Step();
    h.Step();
    ASSERT_TRUE(h.sched.Abort("r"));
    EXPECT_FALSE(h.sched.Abort("r"));
    std::vector<SeqOutput> aborted = h.sched.TakeAbortedOutputs();
    ASSERT_EQ(aborted.size(), 3u);
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(aborted[c].index, c);
      EXPECT_EQ(aborted[c].finish_reason, FinishReason::kAbort);
      EXPECT_EQ(aborted[c].completion_tokens, 2);
    }
    EXPECT_TRUE(h.sched.CheckInvariants().ok());
    ASSERT_TRUE(h.sched.Abort("w"));
    EXPECT_EQ(h.sched.TakeAbortedOutputs().size(), 2u);
    EXPECT_TRUE(h.sched.CheckInvariants().ok());
    EXPECT_EQ(h.sched.block_manager().num_used_blocks(), 0);
    for (int32_t b = 0; b < h.sched.block_manager().num_blocks(); ++b) {
      EXPECT_EQ(h.sched.block_manager().ref_count(b), 0);
    }
  }
}

TEST(SchedulerForkTest, AbortBeforeTheForkEndsAllNChoices) {
  Scheduler sched(Config(), Cache(64));
  ASSERT_TRUE(sched.AddRequest(Req("r", 10, /*n=*/3)).ok());
  ASSERT_TRUE(sched.Abort("r", FinishReason::kAbort));
  const std::vector<SeqOutput> aborted = sched.TakeAbortedOutputs();
  ASSERT_EQ(aborted.size(), 3u);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(aborted[c].index, c);
  EXPECT_TRUE(sched.CheckInvariants().ok());
}

TEST(SchedulerForkTest, OneChoiceEndsAloneTheOthersRunOn) {
  ForkHarness h(Config(), Cache(64));
  ASSERT_TRUE(h.sched.AddRequest(Req("r", 10, /*n=*/3)).ok());
  h.Step();
  h.Step();
  ASSERT_TRUE(h.sched.AbortChoice("r", 1, FinishReason::kStop));
  EXPECT_FALSE(h.sched.AbortChoice("r", 1, FinishReason::kStop));
  for (const SeqOutput& o : h.sched.TakeAbortedOutputs()) h.Record(o);
  EXPECT_EQ(h.sched.num_running(), 2);
  EXPECT_TRUE(h.sched.CheckInvariants().ok());
  h.RunToCompletion();
  EXPECT_EQ(h.finished[K("r", 1)].finish_reason, FinishReason::kStop);
  EXPECT_EQ(h.finished[K("r", 1)].completion_tokens, 2);
  EXPECT_EQ(h.finished[K("r", 0)].completion_tokens, 6);
  EXPECT_EQ(h.finished[K("r", 2)].completion_tokens, 6);
  EXPECT_EQ(h.sched.Find("r"), nullptr);
}

TEST(SchedulerForkTest, AbandonedStepKeepsItsCopiesForTheNextOne) {
  ForkHarness h(Config(), Cache(64));
  ASSERT_TRUE(h.sched.AddRequest(Req("r", 10, /*n=*/2)).ok());
  h.Step();  // fork
  const size_t copies = h.sched.Schedule().block_copies.size();
  EXPECT_EQ(copies, 1u);
  h.sched.AbandonStep();
  h.Step();  // checks that the copy ran: both choices read the prompt's tail
  EXPECT_EQ(h.copies, 1);
  h.RunToCompletion();
}

// Random workload with forks under KV pressure: preemption of forked choices,
// recompute from their own tokens, copies, prefix caching on and off. Every
// KV read is checked by the harness; each choice's tokens must equal those of
// the same choice run alone.
TEST(SchedulerForkTest, SoakWithPreemptionMatchesRunningAlone) {
  for (const bool caching : {true, false}) {
    std::mt19937 rng(caching ? 7 : 8);
    std::vector<std::unique_ptr<Sequence>> reqs;
    std::vector<std::tuple<std::string, int, int, int>> specs;  // id, prompt, n, max_tokens
    for (int i = 0; i < 24; ++i) {
      specs.emplace_back("q" + std::to_string(i), std::uniform_int_distribution<int>(1, 13)(rng),
                         std::uniform_int_distribution<int>(1, 4)(rng),
                         std::uniform_int_distribution<int>(1, 12)(rng));
    }
    ForkHarness busy(Config(/*max_seqs=*/6, /*budget=*/16), Cache(14, caching));
    for (const auto& [id, len, n, max] : specs) {
      ASSERT_TRUE(busy.sched.AddRequest(Req(id, len, n, max)).ok());
    }
    busy.RunToCompletion();
    EXPECT_GT(busy.sched.stats().num_preemptions, 0) << "the pool should be tight";
    for (const auto& [id, len, n, max] : specs) {
      ForkHarness alone(Config(), Cache(64, caching));
      ASSERT_TRUE(alone.sched.AddRequest(Req(id, len, n, max)).ok());
      alone.RunToCompletion();
      for (int c = 0; c < n; ++c) {
        EXPECT_EQ(busy.tokens[K(id, c)], alone.tokens[K(id, c)]) << id << " choice " << c;
        EXPECT_EQ(busy.finished[K(id, c)].completion_tokens, max);
      }
    }
    EXPECT_EQ(busy.sched.block_manager().num_used_blocks(), 0);
  }
}

}  // namespace
}  // namespace tessera
