#include "worker/engine/scheduler.h"

#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int32_t kEos = 2;

SchedulerConfig Config(int budget = 64, int max_seqs = 8, int max_model_len = 64,
                       bool chunked = true, SchedulingPolicy policy = SchedulingPolicy::kFcfs) {
  SchedulerConfig c;
  c.max_num_batched_tokens = budget;
  c.max_num_seqs = max_seqs;
  c.max_model_len = max_model_len;
  c.enable_chunked_prefill = chunked;
  c.policy = policy;
  c.max_waiting = 4;
  return c;
}

CacheConfig Cache(int num_blocks, int block_size = 4, bool prefix_caching = true) {
  CacheConfig c;
  c.block_size = block_size;
  c.num_blocks = num_blocks;
  c.enable_prefix_caching = prefix_caching;
  return c;
}

std::vector<int32_t> Range(int32_t first, int n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

std::unique_ptr<Sequence> Req(const std::string& id, std::vector<int32_t> prompt,
                              int max_tokens = 4, int priority = 0) {
  SamplingParams params;
  params.max_tokens = max_tokens;
  return std::make_unique<Sequence>(id, SeqId(0), std::move(prompt), params, priority);
}

// Drives a Scheduler like the engine does, with a fake model: "KV" is the
// token id written at each slot, checked on every read, and the sampled token
// is a function of the tokens so far, so a recomputed sequence continues
// exactly as it would have.
class Harness {
 public:
  Harness(const SchedulerConfig& config, const CacheConfig& cache)
      : sched(config, cache, {kEos}),
        block_size_(cache.block_size),
        kv_(static_cast<size_t>(cache.num_blocks) * cache.block_size, -1) {}

  static int32_t DefaultToken(const Sequence& seq) {
    return 100 + (seq.last_token() * 31 + seq.num_tokens()) % 1000;
  }

  // One step; returns the outputs (copied) and keeps the plan in `plan`.
  std::vector<SeqOutput> Step() {
    plan = &sched.Schedule();
    std::vector<int32_t> sampled;
    last_plan.clear();
    for (const ScheduledSeq& s : plan->seqs) {
      const Sequence& seq = *s.seq;
      last_plan.push_back({seq.request_id(), s.start, s.num_tokens, s.sample, seq.num_tokens(),
                           seq.num_preemptions()});
      EXPECT_EQ(s.start, seq.num_computed_tokens());
      for (int pos = 0; pos < s.start; ++pos) {
        EXPECT_EQ(Slot(seq, pos), seq.all_tokens()[pos])
            << seq.request_id() << " reads wrong KV at " << pos;
      }
      for (int pos = s.start; pos < s.start + s.num_tokens; ++pos) {
        Slot(seq, pos) = seq.all_tokens()[pos];
      }
      if (s.sample) sampled.push_back(next_token(seq));
    }
    auto outs = sched.Update(*plan, sampled);
    const absl::Status inv = sched.CheckInvariants();
    EXPECT_TRUE(inv.ok()) << inv;
    return std::vector<SeqOutput>(outs.begin(), outs.end());
  }

  // Runs steps until nothing is left; collects every request's tokens.
  void RunToCompletion(int max_steps = 1000) {
    for (int i = 0; i < max_steps && sched.has_unfinished(); ++i) {
      for (const SeqOutput& o : Step()) Record(o);
    }
    ASSERT_FALSE(sched.has_unfinished());
  }

  void Record(const SeqOutput& o) {
    auto& toks = tokens[o.request_id];
    toks.insert(toks.end(), o.new_tokens.begin(), o.new_tokens.end());
    if (o.finish_reason != FinishReason::kNone) finished[o.request_id] = o;
  }

  // (request id, num_tokens, sample) of the last plan.
  std::vector<std::tuple<std::string, int, bool>> Plan() const {
    std::vector<std::tuple<std::string, int, bool>> v;
    for (const Planned& s : last_plan) v.emplace_back(s.id, s.num_tokens, s.sample);
    return v;
  }

  // The last plan as it was before Update() (its Sequence pointers may be
  // gone: finished sequences are destroyed by Update()).
  struct Planned {
    std::string id;
    int start;
    int num_tokens;
    bool sample;
    int seq_tokens;  // the sequence's num_tokens() when scheduled
    int num_preemptions;
  };
  std::vector<Planned> last_plan;

  Scheduler sched;
  // Counts (total_tokens, preempted, ...) are valid after Update(); the
  // ScheduledSeq pointers are not (use last_plan).
  const SchedulerOutput* plan = nullptr;
  std::function<int32_t(const Sequence&)> next_token = &DefaultToken;
  std::map<std::string, std::vector<int32_t>> tokens;
  std::map<std::string, SeqOutput> finished;

 private:
  int32_t& Slot(const Sequence& seq, int pos) {
    const int32_t block = seq.block_table().at(pos / block_size_);
    return kv_[static_cast<size_t>(block) * block_size_ + pos % block_size_];
  }

  const int block_size_;
  std::vector<int32_t> kv_;
};

using P = std::tuple<std::string, int, bool>;

// ---------------------------------------------------------------- admission

TEST(SchedulerAdmissionTest, RefusesEachBadRequestNamingTheLimit) {
  Scheduler s(Config(/*budget=*/64, /*max_seqs=*/8, /*max_model_len=*/32), Cache(6), {kEos});

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
  Scheduler t(Config(64, 8, 32), Cache(6), {kEos});
  EXPECT_TRUE(t.AddRequest(Req("fits", Range(0, 20), 4)).ok());
  EXPECT_TRUE(t.CheckInvariants().ok());
}

TEST(SchedulerAdmissionTest, RefusesASequenceThatAlreadyRan) {
  Scheduler s(Config(), Cache(16), {kEos});
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

TEST(SchedulerTest, EmptyPlanNeedsNoUpdate) {
  Scheduler s(Config(), Cache(16), {kEos});
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
  Scheduler s(Config(), Cache(16), {kEos});
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
