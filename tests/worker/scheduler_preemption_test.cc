// The Scheduler (worker/engine/scheduler.h): preemption by recompute and
// aborts in every state.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/scheduler_harness.h"
#include "worker/engine/scheduler.h"

namespace tessera {
namespace {

using scheduler_testing::Cache;
using scheduler_testing::Config;
using scheduler_testing::Harness;
using scheduler_testing::kEos;
using scheduler_testing::P;
using scheduler_testing::Range;
using scheduler_testing::Req;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ---------------------------------------------------------------- preemption

// Two sequences that each fit alone but not together: the later one is
// preempted, recomputed later, and its output is exactly what it would have
// been without preemption.
TEST(SchedulerPreemptionTest, PreemptThenResumeContinuesTheSameOutput) {
  // 5 blocks of 4 tokens; each request needs up to 7 + 10 - 1 = 16 tokens.
  Harness small(Config(), Cache(5));
  Harness big(Config(), Cache(64));
  for (Harness* h : {&small, &big}) {
    ASSERT_TRUE(h->sched.AddRequest(Req("a", Range(0, 7), 10)).ok());
    ASSERT_TRUE(h->sched.AddRequest(Req("b", Range(50, 7), 10)).ok());
  }
  big.RunToCompletion();

  // Both prefill (2 blocks each), decode to 8 tokens, then a needs a third
  // block (1 free) and b needs one too: b, the latest, is preempted.
  bool saw_preemption = false;
  int resumes = 0;
  for (int step = 0; step < 100 && small.sched.has_unfinished(); ++step) {
    for (const SeqOutput& o : small.Step()) small.Record(o);
    if (!small.plan->preempted.empty()) {
      ASSERT_FALSE(saw_preemption);
      saw_preemption = true;
      EXPECT_THAT(small.plan->preempted, ElementsAre("b"));
      const Sequence* b = small.sched.Find("b");
      ASSERT_NE(b, nullptr);
      EXPECT_EQ(b->status(), SequenceStatus::kPreempted);
      EXPECT_EQ(b->num_preemptions(), 1);
      EXPECT_TRUE(b->block_table().empty());
      EXPECT_EQ(b->num_computed_tokens(), 0);
      EXPECT_THAT(small.Plan(), ElementsAre(P{"a", 1, true}));
    }
    for (const Harness::Planned& s : small.last_plan) {
      if (s.id == "b" && s.num_preemptions > 0 && s.num_tokens > 1) {
        // The resume: prompt + generated tokens are recomputed in one chunk
        // (minus whatever of it is still cached), ending with a sample.
        EXPECT_TRUE(s.sample);
        EXPECT_EQ(s.start + s.num_tokens, s.seq_tokens);
        EXPECT_GT(s.seq_tokens, 7);
        ++resumes;
      }
    }
  }
  EXPECT_EQ(resumes, 1);
  EXPECT_TRUE(saw_preemption);
  EXPECT_FALSE(small.sched.has_unfinished());
  EXPECT_EQ(small.tokens, big.tokens);
  EXPECT_EQ(small.tokens["b"].size(), 10u);
  EXPECT_EQ(small.finished["b"].completion_tokens, 10);
  EXPECT_EQ(small.sched.stats().num_preemptions, 1);
  EXPECT_EQ(small.sched.block_manager().num_used_blocks(), 0);
}

TEST(SchedulerPreemptionTest, PreemptedSequenceReusesItsOwnCachedBlocks) {
  // b is preempted with full, cached blocks; when it resumes they are still
  // in the LRU (a finished without needing them), so it recomputes only the tail.
  Harness h(Config(), Cache(6));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(0, 9), 6)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("b", Range(50, 9), 6)).ok());
  int resumed_start = -1;
  for (int step = 0; step < 100 && h.sched.has_unfinished(); ++step) {
    h.Step();
    for (const Harness::Planned& s : h.last_plan) {
      if (s.id == "b" && s.num_preemptions > 0 && s.num_tokens > 1) resumed_start = s.start;
    }
  }
  EXPECT_EQ(h.sched.stats().num_preemptions, 1);
  EXPECT_EQ(resumed_start, 8) << "2 full blocks of b came back from the cache";
}

TEST(SchedulerPreemptionTest, PriorityPolicyPreemptsTheLeastImportant) {
  // "low" arrives first; "high" later. Pool of 6 blocks: both prefill (2 each)
  // then grow; the victim is "low" although it arrived first.
  Harness h(Config(64, 8, 64, true, SchedulingPolicy::kPriority), Cache(6));
  ASSERT_TRUE(h.sched.AddRequest(Req("low", Range(0, 7), 12, /*priority=*/3)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("high", Range(50, 7), 12, /*priority=*/0)).ok());
  std::vector<std::string> preempted;
  for (int step = 0; step < 200 && h.sched.has_unfinished(); ++step) {
    for (const SeqOutput& o : h.Step()) h.Record(o);
    for (const std::string& id : h.plan->preempted) preempted.push_back(id);
  }
  ASSERT_FALSE(preempted.empty());
  EXPECT_EQ(preempted[0], "low");
  EXPECT_EQ(h.tokens["low"].size(), 12u);
  EXPECT_EQ(h.tokens["high"].size(), 12u);
}

// ---------------------------------------------------------------- abort

TEST(SchedulerAbortTest, AbortInEveryState) {
  Harness h(Config(), Cache(5));
  ASSERT_TRUE(h.sched.AddRequest(Req("run", Range(0, 7), 10)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("pre", Range(50, 7), 10)).ok());
  // Run until "pre" gets preempted.
  for (int i = 0; i < 50; ++i) {
    h.Step();
    if (!h.plan->preempted.empty()) break;
  }
  ASSERT_EQ(h.sched.Find("pre")->status(), SequenceStatus::kPreempted);
  ASSERT_TRUE(h.sched.AddRequest(Req("wait", Range(90, 3), 2)).ok());
  EXPECT_EQ(h.sched.Find("wait")->status(), SequenceStatus::kWaiting);
  const int run_tokens = h.sched.Find("run")->num_output_tokens();

  EXPECT_TRUE(h.sched.Abort("pre"));
  EXPECT_TRUE(h.sched.Abort("wait", FinishReason::kError));
  EXPECT_TRUE(h.sched.Abort("run"));
  EXPECT_FALSE(h.sched.Abort("run")) << "already finished";
  EXPECT_FALSE(h.sched.Abort("nobody"));
  EXPECT_FALSE(h.sched.has_unfinished());
  EXPECT_TRUE(h.sched.has_aborted_outputs());
  EXPECT_EQ(h.sched.block_manager().num_used_blocks(), 0);
  EXPECT_TRUE(h.sched.CheckInvariants().ok());

  const std::vector<SeqOutput> outs = h.sched.TakeAbortedOutputs();
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(outs[0].request_id, "pre");
  EXPECT_EQ(outs[0].finish_reason, FinishReason::kAbort);
  EXPECT_EQ(outs[0].prompt_tokens, 7);
  EXPECT_GT(outs[0].completion_tokens, 0);
  EXPECT_THAT(outs[0].new_tokens, IsEmpty());
  EXPECT_EQ(outs[1].request_id, "wait");
  EXPECT_EQ(outs[1].finish_reason, FinishReason::kError);
  EXPECT_EQ(outs[1].completion_tokens, 0);
  EXPECT_EQ(outs[2].request_id, "run");
  EXPECT_EQ(outs[2].completion_tokens, run_tokens);
  EXPECT_THAT(h.sched.TakeAbortedOutputs(), IsEmpty()) << "delivered once";
}

TEST(SchedulerAbortTest, FinalOutputComesWithTheNextUpdate) {
  Harness h(Config(), Cache(16));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(0, 3), 8)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("b", Range(10, 3), 8)).ok());
  h.Step();
  ASSERT_TRUE(h.sched.Abort("a"));
  const auto outs = h.Step();
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_EQ(outs[0].request_id, "b");
  EXPECT_EQ(outs[0].finish_reason, FinishReason::kNone);
  EXPECT_EQ(outs[1].request_id, "a");
  EXPECT_EQ(outs[1].finish_reason, FinishReason::kAbort);
  EXPECT_EQ(outs[1].completion_tokens, 1);
  EXPECT_THAT(h.sched.TakeAbortedOutputs(), IsEmpty());
}

TEST(SchedulerAbortTest, AbandonedStepThenAbort) {
  Harness h(Config(), Cache(16));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(0, 3), 8)).ok());
  h.sched.Schedule();
  h.sched.AbandonStep();  // the forward failed
  EXPECT_TRUE(h.sched.CheckInvariants().ok());
  EXPECT_TRUE(h.sched.Abort("a", FinishReason::kError));
  EXPECT_EQ(h.sched.block_manager().num_used_blocks(), 0);
}

}  // namespace
}  // namespace tessera
