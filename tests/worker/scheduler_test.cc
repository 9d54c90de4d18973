// The Scheduler (worker/engine/scheduler.h): admission, a request's life
// cycle, chunked prefill, policies, contract violations. Preemption and
// aborts: scheduler_preemption_test.cc; forks: scheduler_fork_test.cc.
#include "worker/engine/scheduler.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/scheduler_harness.h"

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

// ---------------------------------------------------------------- admission

TEST(SchedulerAdmissionTest, RefusesEachBadRequestNamingTheLimit) {
  Scheduler s(Config(/*budget=*/64, /*max_seqs=*/8, /*max_model_len=*/32), Cache(6));

  absl::Status st = s.AddRequest(Req("empty", {}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("prompt must contain at least 1 token"));

  st = s.AddRequest(Req("zero", {1, 2}, /*max_tokens=*/0));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("max_tokens must be at least 1, got 0"));

  st = s.AddRequest(Req("long", Range(0, 20), /*max_tokens=*/13));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("prompt (20 tokens) + max_tokens (13) = 33"));
  EXPECT_THAT(st.message(), HasSubstr("max_model_len (32)"));

  // An absurd max_tokens is refused, not allocated for.
  st = s.AddRequest(Req("absurd", {1}, /*max_tokens=*/2'000'000'000));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("max_tokens (2000000000)"));

  // 6 blocks of 4 tokens = 24 tokens of KV.
  st = s.AddRequest(Req("huge", Range(0, 20), /*max_tokens=*/5));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("needs 7 KV blocks"));
  EXPECT_THAT(st.message(), HasSubstr("capacity is 6 blocks of 4 tokens (24 tokens)"));

  st = s.AddRequest(Req("", {1}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("request_id"));

  EXPECT_EQ(s.AddRequest(nullptr).code(), absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(s.AddRequest(Req("a", {1, 2}, 4)).ok());
  st = s.AddRequest(Req("a", {3}));
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(st.message(), HasSubstr("'a'"));

  // max_waiting = 4.
  ASSERT_TRUE(s.AddRequest(Req("b", {1})).ok());
  ASSERT_TRUE(s.AddRequest(Req("c", {1})).ok());
  ASSERT_TRUE(s.AddRequest(Req("d", {1})).ok());
  st = s.AddRequest(Req("e", {1}));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(st.message(), HasSubstr("max_waiting = 4"));
  EXPECT_EQ(s.num_waiting(), 4);

  // The largest request that fits is accepted: 20 + 4 = 24 tokens = 6 blocks.
  Scheduler t(Config(64, 8, 32), Cache(6));
  EXPECT_TRUE(t.AddRequest(Req("fits", Range(0, 20), 4)).ok());
  EXPECT_TRUE(t.CheckInvariants().ok());
}

TEST(SchedulerAdmissionTest, RefusesASequenceThatAlreadyRan) {
  Scheduler s(Config(), Cache(16));
  auto seq = Req("a", {1, 2});
  seq->SetRunning();
  const absl::Status st = s.AddRequest(std::move(seq));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("new sequence"));
}

// ---------------------------------------------------------------- life cycle

TEST(SchedulerTest, PrefillThenDecodeUntilMaxTokens) {
  Harness h(Config(), Cache(16));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(10, 6), /*max_tokens=*/3)).ok());
  const Sequence* a = h.sched.Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->status(), SequenceStatus::kWaiting);

  auto out = h.Step();
  EXPECT_THAT(h.Plan(), ElementsAre(P{"a", 6, true}));
  EXPECT_EQ(h.plan->total_tokens, 6);
  EXPECT_EQ(h.plan->num_prefill, 1);
  EXPECT_EQ(h.plan->num_decode, 0);
  EXPECT_EQ(a->status(), SequenceStatus::kRunning);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request_id, "a");
  EXPECT_EQ(out[0].finish_reason, FinishReason::kNone);
  EXPECT_EQ(out[0].completion_tokens, 1);
  EXPECT_EQ(out[0].prompt_tokens, 6);

  out = h.Step();
  EXPECT_THAT(h.Plan(), ElementsAre(P{"a", 1, true}));
  EXPECT_EQ(h.plan->num_decode, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kNone);

  out = h.Step();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(out[0].completion_tokens, 3);
  EXPECT_EQ(h.sched.Find("a"), nullptr);
  EXPECT_FALSE(h.sched.has_unfinished());
  EXPECT_EQ(h.sched.block_manager().num_used_blocks(), 0);
  // The request id may be used again once finished.
  EXPECT_TRUE(h.sched.AddRequest(Req("a", {1})).ok());
}

TEST(SchedulerTest, EosStopTokenAndIgnoreEos) {
  Harness h(Config(), Cache(32));
  SamplingParams stop_params;
  stop_params.max_tokens = 10;
  stop_params.stop_token_ids = {7};
  ASSERT_TRUE(h.sched.AddRequest(Req("eos", {1, 1}, 10)).ok());
  ASSERT_TRUE(h.sched
                  .AddRequest(std::make_unique<Sequence>("stop", SeqId(1),
                                                         std::vector<int32_t>{3, 3}, stop_params))
                  .ok());
  SamplingParams ignore;
  ignore.max_tokens = 3;
  ignore.ignore_eos = true;
  ASSERT_TRUE(h.sched
                  .AddRequest(std::make_unique<Sequence>("ignore", SeqId(2),
                                                         std::vector<int32_t>{5, 5}, ignore))
                  .ok());
  // Every sequence samples: eos on its 2nd token; "stop" samples 7 then.
  h.next_token = [](const Sequence& seq) -> int32_t {
    if (seq.num_output_tokens() == 0) return 50;
    return seq.prompt_tokens()[0] == 3 ? 7 : kEos;
  };
  h.RunToCompletion();
  EXPECT_EQ(h.finished["eos"].finish_reason, FinishReason::kEos);
  EXPECT_THAT(h.tokens["eos"], ElementsAre(50, kEos)) << "the eos token is reported";
  EXPECT_EQ(h.finished["stop"].finish_reason, FinishReason::kStop);
  EXPECT_THAT(h.tokens["stop"], ElementsAre(50, 7));
  EXPECT_EQ(h.finished["ignore"].finish_reason, FinishReason::kLength);
  EXPECT_THAT(h.tokens["ignore"], ElementsAre(50, kEos, kEos));
}

TEST(SchedulerTest, RunningSequencesGoBeforeNewOnesAndSeqCapHolds) {
  Harness h(Config(/*budget=*/64, /*max_seqs=*/2), Cache(32));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(0, 5), 8)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("b", Range(10, 5), 8)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("c", Range(20, 5), 8)).ok());
  h.Step();
  EXPECT_THAT(h.Plan(), ElementsAre(P{"a", 5, true}, P{"b", 5, true}));
  EXPECT_EQ(h.sched.num_running(), 2);
  EXPECT_EQ(h.sched.num_waiting(), 1);
  h.Step();
  EXPECT_THAT(h.Plan(), ElementsAre(P{"a", 1, true}, P{"b", 1, true}));
  ASSERT_TRUE(h.sched.Abort("a"));
  h.Step();
  EXPECT_THAT(h.Plan(), ElementsAre(P{"b", 1, true}, P{"c", 5, true}));
}

TEST(SchedulerTest, ReusesCachedPromptAndReportsIt) {
  Harness h(Config(), Cache(32));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(0, 10), 2)).ok());
  h.RunToCompletion();
  EXPECT_EQ(h.finished["a"].cached_prompt_tokens, 0);
  ASSERT_TRUE(h.sched.AddRequest(Req("b", Range(0, 10), 2)).ok());
  for (const SeqOutput& o : h.Step()) h.Record(o);
  // 8 of 10 prompt tokens (2 full blocks) come from the cache.
  EXPECT_THAT(h.Plan(), ElementsAre(P{"b", 2, true}));
  EXPECT_EQ(h.last_plan[0].start, 8);
  h.RunToCompletion();
  EXPECT_EQ(h.finished["b"].cached_prompt_tokens, 8);
  EXPECT_EQ(h.tokens["a"], h.tokens["b"]);
  const SchedulerStats st = h.sched.stats();
  EXPECT_EQ(st.prefix_cache_queries, 20);
  EXPECT_EQ(st.prefix_cache_hits, 8);
  EXPECT_EQ(st.used_blocks, 0);
  EXPECT_EQ(st.total_blocks, 32);
  EXPECT_FALSE(h.sched.TakeKvEvents().empty());
}

// ---------------------------------------------------------------- chunked prefill

TEST(SchedulerChunkedTest, BudgetExactlyAtBlockBoundary) {
  Harness h(Config(/*budget=*/8), Cache(16));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(0, 20), 2)).ok());
  EXPECT_THAT(h.Step(), IsEmpty());
  EXPECT_THAT(h.Plan(), ElementsAre(P{"a", 8, false}));
  const Sequence* a = h.sched.Find("a");
  EXPECT_EQ(a->num_computed_tokens(), 8);
  EXPECT_EQ(a->block_table().size(), 2u);
  EXPECT_EQ(h.sched.TakeKvEvents().size(), 2u) << "both full blocks are cached at once";
  h.Step();
  EXPECT_THAT(h.Plan(), ElementsAre(P{"a", 8, false}));
  auto out = h.Step();
  EXPECT_THAT(h.Plan(), ElementsAre(P{"a", 4, true}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].completion_tokens, 1);
}

TEST(SchedulerChunkedTest, PromptLongerThanBudgetEndsWithAPartialChunk) {
  Harness h(Config(/*budget=*/6), Cache(16));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(0, 20), 1)).ok());
  std::vector<P> plans;
  for (int i = 0; i < 4; ++i) {
    h.Step();
    plans.push_back(h.Plan().at(0));
  }
  EXPECT_THAT(plans,
              ElementsAre(P{"a", 6, false}, P{"a", 6, false}, P{"a", 6, false}, P{"a", 2, true}));
  EXPECT_FALSE(h.sched.has_unfinished());
}

TEST(SchedulerChunkedTest, BudgetOfOneToken) {
  Harness h(Config(/*budget=*/1), Cache(16));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(0, 3), 2)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("b", Range(10, 2), 1)).ok());
  std::vector<P> plans;
  for (int i = 0; i < 6; ++i) {
    h.Step();
    ASSERT_EQ(h.plan->seqs.size(), 1u);
    EXPECT_EQ(h.plan->total_tokens, 1);
    plans.push_back(h.Plan()[0]);
  }
  // a runs to its end first (it is running, b waits), then b.
  EXPECT_THAT(plans, ElementsAre(P{"a", 1, false}, P{"a", 1, false}, P{"a", 1, true},
                                 P{"a", 1, true}, P{"b", 1, false}, P{"b", 1, true}));
  EXPECT_FALSE(h.sched.has_unfinished());
}

TEST(SchedulerChunkedTest, SeveralPromptsShareTheBudget) {
  Harness h(Config(/*budget=*/10), Cache(32));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(0, 4), 4)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("b", Range(10, 4), 4)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("c", Range(20, 7), 4)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("d", Range(30, 4), 4)).ok());
  h.Step();
  EXPECT_THAT(h.Plan(), ElementsAre(P{"a", 4, true}, P{"b", 4, true}, P{"c", 2, false}));
  EXPECT_EQ(h.plan->total_tokens, 10);
  h.Step();
  // Decodes and the unfinished chunk first, then d with what is left.
  EXPECT_THAT(h.Plan(),
              ElementsAre(P{"a", 1, true}, P{"b", 1, true}, P{"c", 5, true}, P{"d", 3, false}));
  EXPECT_EQ(h.plan->total_tokens, 10);
  EXPECT_EQ(h.plan->num_decode, 2);
  EXPECT_EQ(h.plan->num_prefill, 2);
  EXPECT_EQ(h.plan->num_sampled, 3);
}

TEST(SchedulerChunkedTest, WithoutChunkingAPromptRunsWholeOrWaits) {
  Harness h(Config(/*budget=*/10, /*max_seqs=*/8, /*max_model_len=*/10, /*chunked=*/false),
            Cache(32));
  ASSERT_TRUE(h.sched.AddRequest(Req("a", Range(0, 6), 4)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("b", Range(10, 6), 4)).ok());
  h.Step();
  EXPECT_THAT(h.Plan(), ElementsAre(P{"a", 6, true}));
  h.Step();
  EXPECT_THAT(h.Plan(), ElementsAre(P{"a", 1, true}, P{"b", 6, true}));
}

// ---------------------------------------------------------------- policies

TEST(SchedulerPolicyTest, PriorityPolicyAdmitsMostImportantFirst) {
  Harness h(Config(/*budget=*/64, /*max_seqs=*/1, 64, true, SchedulingPolicy::kPriority),
            Cache(32));
  ASSERT_TRUE(h.sched.AddRequest(Req("low", {1}, 1, /*priority=*/5)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("high", {2}, 1, /*priority=*/-1)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("mid", {3}, 1, /*priority=*/0)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("mid2", {4}, 1, /*priority=*/0)).ok());
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    h.Step();
    order.push_back(std::get<0>(h.Plan().at(0)));
  }
  EXPECT_THAT(order, ElementsAre("high", "mid", "mid2", "low"));
}

TEST(SchedulerPolicyTest, FcfsIgnoresPriority) {
  Harness h(Config(/*budget=*/64, /*max_seqs=*/1), Cache(32));
  ASSERT_TRUE(h.sched.AddRequest(Req("low", {1}, 1, /*priority=*/5)).ok());
  ASSERT_TRUE(h.sched.AddRequest(Req("high", {2}, 1, /*priority=*/-1)).ok());
  std::vector<std::string> order;
  for (int i = 0; i < 2; ++i) {
    h.Step();
    order.push_back(std::get<0>(h.Plan().at(0)));
  }
  EXPECT_THAT(order, ElementsAre("low", "high"));
}

TEST(SchedulerTest, EmptyPlanNeedsNoUpdate) {
  Scheduler s(Config(), Cache(16));
  EXPECT_TRUE(s.Schedule().empty());
  EXPECT_TRUE(s.Schedule().empty()) << "an empty plan is not in flight";
  ASSERT_TRUE(s.AddRequest(Req("a", Range(0, 3), 8)).ok());
  EXPECT_TRUE(s.Abort("a"));
  const SchedulerOutput& plan = s.Schedule();
  EXPECT_TRUE(plan.empty());
  const auto outs = s.Update(plan, {});
  ASSERT_EQ(outs.size(), 1u) << "Update() of an empty plan still flushes aborts";
  EXPECT_EQ(outs[0].finish_reason, FinishReason::kAbort);
}

TEST(SchedulerDeathTest, ContractViolationsAbort) {
  Scheduler s(Config(), Cache(16));
  ASSERT_TRUE(s.AddRequest(Req("a", Range(0, 3), 8)).ok());
  const SchedulerOutput& plan = s.Schedule();
  EXPECT_DEATH(s.Abort("a"), "between Schedule\\(\\) and Update\\(\\)");
  EXPECT_DEATH(s.Schedule(), "Schedule\\(\\) twice");
  EXPECT_DEATH(s.Update(plan, {}), "got 0 sampled tokens for 1");
  const int32_t token = 5;
  s.Update(plan, std::span<const int32_t>(&token, 1));
  EXPECT_DEATH(s.Update(plan, std::span<const int32_t>(&token, 1)), "once");
}

}  // namespace
}  // namespace tessera
