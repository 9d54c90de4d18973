// The Scheduler test harness: small configs and requests, and Harness, which
// drives a Scheduler like the engine does with a fake model. Header-only; for
// tests/worker/scheduler*_test.cc.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/scheduler_stop.h"
#include "worker/engine/scheduler.h"

namespace tessera::scheduler_testing {

constexpr int32_t kEos = 2;

inline SchedulerConfig Config(int budget = 64, int max_seqs = 8, int max_model_len = 64,
                              bool chunked = true,
                              SchedulingPolicy policy = SchedulingPolicy::kFcfs) {
  SchedulerConfig c;
  c.max_num_batched_tokens = budget;
  c.max_num_seqs = max_seqs;
  c.max_model_len = max_model_len;
  c.enable_chunked_prefill = chunked;
  c.policy = policy;
  c.max_waiting = 4;
  return c;
}

inline CacheConfig Cache(int num_blocks, int block_size = 4, bool prefix_caching = true) {
  CacheConfig c;
  c.block_size = block_size;
  c.num_blocks = num_blocks;
  c.enable_prefix_caching = prefix_caching;
  return c;
}

inline std::vector<int32_t> Range(int32_t first, int n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

inline std::unique_ptr<Sequence> Req(const std::string& id, std::vector<int32_t> prompt,
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
      : sched(config, cache),
        stop_(std::vector<int32_t>{kEos}, config.max_model_len),
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
    std::vector<SeqOutput> outs =
        testing::FinishStopped(sched, stop_, sched.Update(*plan, sampled));
    const absl::Status inv = sched.CheckInvariants();
    EXPECT_TRUE(inv.ok()) << inv;
    return outs;
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
  // gone: finished sequences are destroyed when they finish).
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

  const StopChecker stop_;
  const int block_size_;
  std::vector<int32_t> kv_;
};

using P = std::tuple<std::string, int, bool>;

}  // namespace tessera::scheduler_testing
