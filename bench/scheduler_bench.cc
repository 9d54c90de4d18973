// Cost of the engine core's bookkeeping per step: Scheduler::Schedule() +
// Scheduler::Update() + the stop decision on each new token (StopChecker, as
// the OutputProcessor makes it: the request's stop conditions found through
// the output's slot, checked against its id) and Scheduler::FinishChoice for
// the finished (+ draining KV events), with prefix
// caching on, in steady state (a finished request is replaced at once, inside
// the timed loop, as the engine would do it).
//
//   BM_DecodeStep/N             N running sequences, all decoding (shared
//                               64-token system prompt, 8 unique tokens each,
//                               256..768 output tokens, UUID-length ids).
//   BM_ChunkedPrefillStep/64    64 long prompts (4096 distinct tokens each)
//                               waiting/in chunked prefill, budget 2048: each
//                               step hashes, allocates and caches 128 blocks
//                               and, once the pool is full, evicts as many.
//   BM_MixedStep/192/64         192 decoding + 64 long prompts in chunked
//                               prefill sharing the 2048-token budget.
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "worker/engine/scheduler.h"
#include "worker/engine/stop_checker.h"

namespace tessera {
namespace {

constexpr int32_t kEos = 2;

class Workload {
 public:
  Workload(int num_decode, int num_long)
      : sched_(MakeConfig(), MakeCache()),
        stop_({kEos}, MakeConfig().max_model_len),
        num_decode_(num_decode),
        num_long_(num_long) {
    system_prompt_.resize(64);
    for (int32_t& t : system_prompt_) t = Token();
    for (int i = 0; i < num_decode_; ++i) AddDecode();
    for (int i = 0; i < num_long_; ++i) AddLong();
    // Warm up until every decode request is past its prompt.
    for (int i = 0; i < 64; ++i) Step();
  }

  static SchedulerConfig MakeConfig() {
    SchedulerConfig c;
    c.max_num_seqs = 512;
    c.max_num_batched_tokens = 2048;
    c.max_model_len = 8192;
    c.enable_chunked_prefill = true;
    return c;
  }
  static CacheConfig MakeCache() {
    CacheConfig c;
    c.block_size = 16;
    c.num_blocks = 32768;
    c.enable_prefix_caching = true;
    return c;
  }

  // One engine step; returns the number of scheduled sequences.
  int Step() {
    const SchedulerOutput& plan = sched_.Schedule();
    sampled_.clear();
    for (const ScheduledSeq& s : plan.seqs) {
      if (s.sample) sampled_.push_back(Token());
    }
    int finished_decode = 0;
    int finished_long = 0;
    for (const SeqOutput& out : sched_.Update(plan, sampled_)) {
      if (out.new_tokens.empty()) continue;
      const Tracked& tracked = tracked_[out.output_slot];
      if (tracked.id != out.request_id) std::abort();
      const FinishReason reason = stop_.Check(tracked.stop, out.new_tokens.back(),
                                              out.prompt_tokens, out.completion_tokens);
      if (reason == FinishReason::kNone) continue;
      sched_.FinishChoice(out.request_id, out.index, reason);
      free_slots_.push_back(out.output_slot);
      (out.prompt_tokens > 1024 ? finished_long : finished_decode)++;
    }
    for (int i = 0; i < finished_decode; ++i) AddDecode();
    for (int i = 0; i < finished_long; ++i) AddLong();
    events_ += sched_.TakeKvEvents().size();
    return static_cast<int>(plan.seqs.size());
  }

  const Scheduler& scheduler() const { return sched_; }
  size_t events() const { return events_; }

 private:
  // xorshift64: the fake model's "sampling" should cost next to nothing.
  int32_t Token() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return 100 + static_cast<int32_t>(state_ % 30000);
  }

  std::string NextId() {
    // UUID length: the realistic case for string copies.
    return absl::StrFormat("%08x-0000-4000-8000-%012x", static_cast<uint32_t>(rng_()), next_id_++);
  }

  void Add(std::vector<int32_t> prompt, int max_tokens) {
    SamplingParams params;
    params.max_tokens = max_tokens;
    params.ignore_eos = true;
    auto seq = std::make_unique<Sequence>(NextId(), SeqId(next_id_), std::move(prompt), params);
    // As OutputProcessor::Add: the request's state in a reused slot.
    int32_t slot;
    if (free_slots_.empty()) {
      slot = static_cast<int32_t>(tracked_.size());
      tracked_.emplace_back();
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    tracked_[slot] = Tracked{seq->request_id(), StopConditions::Of(params)};
    seq->set_output_slot(slot);
    if (!sched_.AddRequest(std::move(seq)).ok()) std::abort();
  }
  void AddDecode() {
    std::vector<int32_t> prompt = system_prompt_;
    for (int i = 0; i < 8; ++i) prompt.push_back(Token());
    Add(std::move(prompt), 256 + static_cast<int>(rng_() % 512));
  }
  void AddLong() {
    // Distinct from every other long prompt from its first block on, so
    // nothing hits; cheap to make.
    std::vector<int32_t> prompt(4096);
    const uint64_t r = next_id_;
    for (size_t i = 0; i < prompt.size(); ++i) {
      prompt[i] = 100 + static_cast<int32_t>((r * 7919 + i * 31) % 30000);
    }
    Add(std::move(prompt), 1);
  }

  // What the output processor keeps per request (here: id and stop
  // conditions), by slot.
  struct Tracked {
    std::string id;
    StopConditions stop;
  };

  Scheduler sched_;
  const StopChecker stop_;
  std::vector<Tracked> tracked_;
  std::vector<int32_t> free_slots_;
  const int num_decode_;
  const int num_long_;
  std::mt19937_64 rng_{42};
  uint64_t state_ = 0x9E3779B97F4A7C15ULL;
  std::vector<int32_t> system_prompt_;
  std::vector<int32_t> sampled_;
  uint64_t next_id_ = 0;
  size_t events_ = 0;
};

void RunSteps(benchmark::State& state, int num_decode, int num_long) {
  Workload w(num_decode, num_long);
  int64_t seqs = 0;
  for (auto _ : state) seqs += w.Step();
  const SchedulerStats st = w.scheduler().stats();
  state.counters["seqs/step"] =
      benchmark::Counter(static_cast<double>(seqs), benchmark::Counter::kAvgIterations);
  state.counters["running"] = st.num_running;
  state.counters["used_blocks"] = static_cast<double>(st.used_blocks);
  state.counters["hit_rate"] =
      st.prefix_cache_queries ? static_cast<double>(st.prefix_cache_hits) / st.prefix_cache_queries
                              : 0.0;
}

void BM_DecodeStep(benchmark::State& state) {
  RunSteps(state, static_cast<int>(state.range(0)), 0);
}
BENCHMARK(BM_DecodeStep)->Arg(64)->Arg(256)->Arg(512)->Unit(benchmark::kMicrosecond);

void BM_ChunkedPrefillStep(benchmark::State& state) {
  RunSteps(state, 0, static_cast<int>(state.range(0)));
}
BENCHMARK(BM_ChunkedPrefillStep)->Arg(64)->Unit(benchmark::kMicrosecond);

void BM_MixedStep(benchmark::State& state) {
  RunSteps(state, static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
}
BENCHMARK(BM_MixedStep)->Args({192, 64})->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace tessera

BENCHMARK_MAIN();
