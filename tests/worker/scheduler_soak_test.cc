// Randomized soak of the Scheduler + BlockManager: random arrivals, lengths,
// priorities, shared prefixes, aborts and fake sampled tokens (sometimes eos)
// over a small KV pool, so prefix hits, evictions and preemptions all happen.
// After every step it checks the bookkeeping; at the end, that every admitted
// request finished (with exactly the tokens a batch-free run gives) or was
// aborted, and that the pool is entirely free. Fixed seeds: failures reproduce.
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/scheduler_stop.h"
#include "worker/engine/scheduler.h"

namespace tessera {
namespace {

constexpr int32_t kEos = 2;
constexpr int32_t kStopToken = 3;
constexpr int kBlockSize = 4;
constexpr int kNumBlocks = 40;
constexpr int kMaxModelLen = 48;
constexpr int kSteps = 20000;

// The fake model: the next token is a function of the tokens so far, so a
// sequence's output does not depend on batching, chunking or preemption.
int32_t NextToken(std::span<const int32_t> tokens) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = tokens.size() >= 3 ? tokens.size() - 3 : 0; i < tokens.size(); ++i) {
    h = (h ^ static_cast<uint64_t>(tokens[i])) * 1099511628211ULL;
  }
  h ^= tokens.size();
  h *= 0x9E3779B97F4A7C15ULL;
  const uint32_t r = static_cast<uint32_t>(h >> 40);
  if (r % 29 == 0) return kEos;
  if (r % 97 == 0) return kStopToken;
  return 10 + static_cast<int32_t>(r % 50);
}

struct RequestSpec {
  std::vector<int32_t> prompt;
  SamplingParams params;
};

// What a batch-free run produces for `spec`, and why it stops.
std::pair<std::vector<int32_t>, FinishReason> Reference(const RequestSpec& spec) {
  std::vector<int32_t> tokens = spec.prompt;
  std::vector<int32_t> out;
  while (true) {
    const int32_t t = NextToken(tokens);
    tokens.push_back(t);
    out.push_back(t);
    if (!spec.params.ignore_eos && t == kEos) return {out, FinishReason::kEos};
    for (int32_t s : spec.params.stop_token_ids) {
      if (s == t) return {out, FinishReason::kStop};
    }
    if (static_cast<int>(out.size()) >= spec.params.max_tokens ||
        static_cast<int>(tokens.size()) >= kMaxModelLen) {
      return {out, FinishReason::kLength};
    }
  }
}

struct SoakParam {
  SchedulingPolicy policy;
  bool chunked;
  bool prefix_caching;
  uint32_t seed;
};

class SchedulerSoakTest : public ::testing::TestWithParam<SoakParam> {};

TEST_P(SchedulerSoakTest, BookkeepingHoldsEveryStep) {
  const SoakParam p = GetParam();
  std::mt19937 rng(p.seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto chance = [&](double prob) { return std::bernoulli_distribution(prob)(rng); };

  SchedulerConfig config;
  config.policy = p.policy;
  config.enable_chunked_prefill = p.chunked;
  config.max_num_seqs = 6;
  config.max_model_len = kMaxModelLen;
  config.max_num_batched_tokens = p.chunked ? 20 : kMaxModelLen;
  config.max_waiting = 12;
  CacheConfig cache;
  cache.block_size = kBlockSize;
  cache.num_blocks = kNumBlocks;
  cache.enable_prefix_caching = p.prefix_caching;
  ASSERT_TRUE(config.Validate().ok());
  Scheduler sched(config, cache);
  const StopChecker stop({kEos}, config.max_model_len);

  // A few shared prefixes, so prefix hits happen.
  std::vector<std::vector<int32_t>> prefixes;
  for (int i = 0; i < 5; ++i) {
    std::vector<int32_t> prefix(uniform(4, 20));
    for (int32_t& t : prefix) t = uniform(10, 59);
    prefixes.push_back(std::move(prefix));
  }

  std::map<std::string, RequestSpec> specs;  // admitted
  std::map<std::string, std::vector<int32_t>> streamed;
  std::map<std::string, FinishReason> finals;
  absl::flat_hash_set<std::string> aborted;
  std::vector<std::string> live;  // admitted, no final output yet
  std::vector<int32_t> kv(static_cast<size_t>(kNumBlocks) * kBlockSize, -1);
  std::set<BlockHash> router_view;  // what a router following the events holds
  int next_id = 0;
  int64_t refused = 0;

  auto slot = [&](const Sequence& seq, int pos) -> int32_t& {
    const int32_t block = seq.block_table().at(pos / kBlockSize);
    return kv[static_cast<size_t>(block) * kBlockSize + pos % kBlockSize];
  };
  auto deliver = [&](const SeqOutput& o) {
    ASSERT_TRUE(specs.contains(o.request_id)) << o.request_id;
    ASSERT_FALSE(finals.contains(o.request_id)) << o.request_id << " finished twice";
    auto& s = streamed[o.request_id];
    s.insert(s.end(), o.new_tokens.begin(), o.new_tokens.end());
    EXPECT_EQ(o.completion_tokens, static_cast<int>(s.size())) << o.request_id;
    EXPECT_EQ(o.prompt_tokens, static_cast<int>(specs[o.request_id].prompt.size()));
    if (o.finish_reason != FinishReason::kNone) {
      finals[o.request_id] = o.finish_reason;
      std::erase(live, o.request_id);
    }
  };
  auto add_requests = [&] {
    const int n = chance(0.4) ? 1 : (chance(0.08) ? 3 : 0);
    for (int i = 0; i < n; ++i) {
      RequestSpec spec;
      const auto& prefix = prefixes[uniform(0, static_cast<int>(prefixes.size()) - 1)];
      const int keep = chance(0.8) ? static_cast<int>(prefix.size())
                                   : uniform(1, static_cast<int>(prefix.size()));
      spec.prompt.assign(prefix.begin(), prefix.begin() + keep);
      for (int k = uniform(0, 12); k > 0; --k) spec.prompt.push_back(uniform(10, 59));
      spec.params.max_tokens = uniform(1, kMaxModelLen - static_cast<int>(spec.prompt.size()));
      spec.params.ignore_eos = chance(0.3);
      if (chance(0.3)) spec.params.stop_token_ids = {kStopToken};
      const std::string id = absl::StrCat("r", next_id++);
      auto seq = std::make_unique<Sequence>(id, SeqId(next_id), spec.prompt, spec.params,
                                            /*priority=*/uniform(0, 3));
      const absl::Status st = sched.AddRequest(std::move(seq));
      if (st.ok()) {
        specs[id] = spec;
        live.push_back(id);
      } else {
        ASSERT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
        ++refused;
      }
    }
  };

  int steps = 0;
  for (; steps < kSteps || sched.has_unfinished(); ++steps) {
    ASSERT_LT(steps, kSteps + 5000) << "requests do not finish (livelock?)";
    if (steps < kSteps) {
      add_requests();
      if (!live.empty() && chance(0.02)) {
        const std::string id = live[uniform(0, static_cast<int>(live.size()) - 1)];
        ASSERT_TRUE(sched.Abort(id, chance(0.5) ? FinishReason::kAbort : FinishReason::kError));
        aborted.insert(id);
      }
      if (chance(0.01)) {
        ASSERT_FALSE(sched.Abort("never-admitted"));
      }
      if (chance(0.2)) {
        for (const SeqOutput& o : sched.TakeAbortedOutputs()) deliver(o);
      }
    }

    const SchedulerOutput& plan = sched.Schedule();
    ASSERT_LE(plan.total_tokens, config.max_num_batched_tokens);
    ASSERT_LE(static_cast<int>(plan.seqs.size()), config.max_num_seqs);
    int total = 0;
    std::vector<int32_t> sampled;
    absl::flat_hash_set<const Sequence*> seen;
    for (const ScheduledSeq& s : plan.seqs) {
      const Sequence& seq = *s.seq;
      ASSERT_TRUE(seen.insert(&seq).second) << seq.request_id() << " scheduled twice";
      ASSERT_EQ(seq.status(), SequenceStatus::kRunning);
      ASSERT_GE(s.num_tokens, 1);
      ASSERT_EQ(s.start, seq.num_computed_tokens());
      ASSERT_LE(s.start + s.num_tokens, seq.num_tokens());
      ASSERT_EQ(s.sample, s.start + s.num_tokens == seq.num_tokens());
      if (!p.chunked) {
        ASSERT_TRUE(s.sample) << "a prompt ran in chunks with chunking off";
      }
      total += s.num_tokens;
      // The "model": read the cached KV, write the new KV, sample.
      for (int pos = 0; pos < s.start; ++pos) {
        ASSERT_EQ(slot(seq, pos), seq.all_tokens()[pos])
            << seq.request_id() << " reads stale KV at " << pos << " (step " << steps << ")";
      }
      for (int pos = s.start; pos < s.start + s.num_tokens; ++pos) {
        slot(seq, pos) = seq.all_tokens()[pos];
      }
      if (s.sample) sampled.push_back(NextToken(seq.all_tokens()));
    }
    ASSERT_EQ(total, plan.total_tokens);
    for (const std::string& id : plan.preempted) {
      const Sequence* seq = sched.Find(id);
      ASSERT_NE(seq, nullptr);
      ASSERT_EQ(seq->status(), SequenceStatus::kPreempted);
    }
    for (const SeqOutput& o : testing::FinishStopped(sched, stop, sched.Update(plan, sampled))) {
      deliver(o);
    }
    const absl::Status inv = sched.CheckInvariants();
    ASSERT_TRUE(inv.ok()) << "step " << steps << ": " << inv;
    for (const KvEvent& e : sched.TakeKvEvents()) {
      if (e.type == KvEvent::Type::kStored) {
        ASSERT_TRUE(router_view.insert(e.hash).second) << "stored twice";
      } else {
        ASSERT_EQ(router_view.erase(e.hash), 1u) << "evicted but never stored";
      }
    }
  }
  for (const SeqOutput& o : sched.TakeAbortedOutputs()) deliver(o);

  // Every admitted request got exactly one final output: its reference
  // tokens, or an abort.
  ASSERT_EQ(finals.size(), specs.size());
  EXPECT_TRUE(live.empty());
  int completed = 0;
  for (const auto& [id, spec] : specs) {
    ASSERT_TRUE(finals.contains(id)) << id << " never finished";
    if (aborted.contains(id)) {
      EXPECT_TRUE(finals[id] == FinishReason::kAbort || finals[id] == FinishReason::kError);
      continue;
    }
    const auto [want_tokens, want_reason] = Reference(spec);
    EXPECT_EQ(streamed[id], want_tokens) << id;
    EXPECT_EQ(finals[id], want_reason) << id;
    ++completed;
  }

  // The pool is entirely free again (free or cached-evictable), and the
  // event stream reproduces the cache's contents.
  const BlockManager& bm = sched.block_manager();
  EXPECT_EQ(bm.num_used_blocks(), 0);
  EXPECT_EQ(bm.num_free_blocks(), kNumBlocks);
  for (int32_t b = 0; b < kNumBlocks; ++b) EXPECT_EQ(bm.ref_count(b), 0);
  EXPECT_TRUE(bm.CheckInvariants({}).ok());
  const std::vector<BlockHash> snapshot = bm.CachedBlockHashes();
  EXPECT_EQ(std::set<BlockHash>(snapshot.begin(), snapshot.end()), router_view);

  // The soak exercised what it is meant to.
  const SchedulerStats stats = sched.stats();
  EXPECT_GT(completed, 1000);
  EXPECT_GT(aborted.size(), 50u);
  EXPECT_GT(stats.num_preemptions, 10);
  if (p.prefix_caching) {
    EXPECT_GT(stats.prefix_cache_hits, 1000);
  } else {
    EXPECT_EQ(stats.prefix_cache_queries, 0);
  }
  std::printf(
      "[soak] steps=%d admitted=%zu refused=%lld completed=%d aborted=%zu "
      "preemptions=%lld prefix hits/queries=%lld/%lld tokens\n",
      steps, specs.size(), static_cast<long long>(refused), completed, aborted.size(),
      static_cast<long long>(stats.num_preemptions),
      static_cast<long long>(stats.prefix_cache_hits),
      static_cast<long long>(stats.prefix_cache_queries));
}

INSTANTIATE_TEST_SUITE_P(Configs, SchedulerSoakTest,
                         ::testing::Values(SoakParam{SchedulingPolicy::kFcfs, true, true, 1},
                                           SoakParam{SchedulingPolicy::kFcfs, false, true, 2},
                                           SoakParam{SchedulingPolicy::kPriority, true, true, 3},
                                           SoakParam{SchedulingPolicy::kPriority, false, true, 4},
                                           SoakParam{SchedulingPolicy::kFcfs, true, false, 5},
                                           SoakParam{SchedulingPolicy::kPriority, false, false, 6}),
                         [](const ::testing::TestParamInfo<SoakParam>& info) {
                           return std::string(info.param.policy == SchedulingPolicy::kFcfs
                                                  ? "Fcfs"
                                                  : "Priority") +
                                  (info.param.chunked ? "Chunked" : "Whole") +
                                  (info.param.prefix_caching ? "PrefixCache" : "NoCache");
                         });

}  // namespace
}  // namespace tessera
