// Cost of prefix-aware placement in the router: PrefixIndex::MatchPrefix of
// a 64-block prompt, and a full prefix-policy decision (MatchPrefix over all
// candidates + PlacementPolicy::Choose), as WorkerPool::Place runs it.
//
// Each worker holds `blocks_per_worker` blocks of its own (random 64-bit
// hashes: the index only sees hashes) plus the prompt's blocks:
//   holders = 2    the prompt is cached on two workers (all 64 blocks on one,
//                  the first 32 on another): the common case
//   holders = all  every worker holds all 64 blocks: the worst case, each
//                  block is walked with W holders
// The lookup walks the prompt's hashes and each one's holders; it never
// scans a worker's blocks, so its cost should not grow with the index.
//
//   BM_MatchPrefix/W/blocks_per_worker/holders   (holders: 2, or 0 = all)
//   BM_PrefixPlace/W                              MatchPrefix + Choose, holders = 2
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <tuple>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/block_hash.h"
#include "router/policy.h"
#include "router/prefix_index.h"

namespace tessera::router {
namespace {

constexpr int kPromptBlocks = 64;
constexpr int kBlockSize = 16;

uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::vector<uint64_t> PromptHashes() {
  std::vector<int32_t> tokens(kPromptBlocks * kBlockSize);
  std::iota(tokens.begin(), tokens.end(), 1000);
  return HashFullBlocks(tokens, kBlockSize);
}

struct Cluster {
  PrefixIndex index;
  std::vector<uint64_t> prompt = PromptHashes();
  std::vector<WorkerSlot> slots;
};

// Built once per shape and kept (filling 6.4M blocks takes seconds).
Cluster& GetCluster(int workers, int blocks_per_worker, bool all_hold_prompt) {
  static std::map<std::tuple<int, int, bool>, std::unique_ptr<Cluster>> clusters;
  std::unique_ptr<Cluster>& c = clusters[{workers, blocks_per_worker, all_hold_prompt}];
  if (c) return *c;
  c = std::make_unique<Cluster>();
  std::vector<uint64_t> blocks(blocks_per_worker);
  for (int w = 0; w < workers; ++w) {
    const WorkerSlot slot = static_cast<WorkerSlot>(w);
    c->slots.push_back(slot);
    for (int i = 0; i < blocks_per_worker; ++i) {
      blocks[i] = Mix64((static_cast<uint64_t>(w) << 32) | static_cast<uint64_t>(i));
    }
    c->index.Store(slot, blocks);
    if (all_hold_prompt) {
      c->index.Store(slot, c->prompt);
    } else if (w == 0) {
      c->index.Store(slot, c->prompt);
    } else if (w == workers - 1) {
      c->index.Store(slot, std::span<const uint64_t>(c->prompt).first(kPromptBlocks / 2));
    }
  }
  return *c;
}

void BM_MatchPrefix(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  const int blocks_per_worker = static_cast<int>(state.range(1));
  const bool all = state.range(2) == 0;
  Cluster& c = GetCluster(workers, blocks_per_worker, all);
  std::vector<int> matched(c.slots.size());
  for (auto _ : state) {
    c.index.MatchPrefix(c.prompt, c.slots, matched);
    benchmark::DoNotOptimize(matched.data());
    benchmark::ClobberMemory();
  }
  if (matched[0] != kPromptBlocks) state.SkipWithError("worker 0 should match the whole prompt");
  state.counters["index_hashes"] = static_cast<double>(c.index.size());
  state.counters["ns/prompt_block"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kPromptBlocks,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_MatchPrefix)
    ->ArgNames({"workers", "blocks_per_worker", "holders"})
    ->Args({3, 100'000, 2})
    ->Args({16, 100'000, 2})
    ->Args({64, 100'000, 2})
    ->Args({64, 1'000, 2})
    ->Args({3, 100'000, 0})
    ->Args({16, 100'000, 0})
    ->Args({64, 100'000, 0})
    ->Args({64, 1'000, 0})
    ->Unit(benchmark::kNanosecond);

void BM_PrefixPlace(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  Cluster& c = GetCluster(workers, 100'000, /*all_hold_prompt=*/false);
  PolicyOptions options;
  options.seed = 1;
  std::unique_ptr<PlacementPolicy> policy = *MakePolicy("prefix", options);
  std::vector<Candidate> candidates(c.slots.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    candidates[i].slot = c.slots[i];
    candidates[i].load = static_cast<int64_t>(Mix64(i) % 4);  // balanced
  }
  std::vector<int> matched(c.slots.size());
  PlacementRequest request{.block_hashes = c.prompt};
  size_t chosen = 0;
  for (auto _ : state) {
    c.index.MatchPrefix(request.block_hashes, c.slots, matched);
    for (size_t i = 0; i < candidates.size(); ++i) candidates[i].matched_blocks = matched[i];
    chosen = policy->Choose(request, candidates);
    benchmark::DoNotOptimize(chosen);
  }
  if (chosen != 0) state.SkipWithError("the policy should pick worker 0 (whole prompt cached)");
}
BENCHMARK(BM_PrefixPlace)
    ->ArgName("workers")
    ->Arg(3)
    ->Arg(16)
    ->Arg(64)
    ->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace tessera::router

BENCHMARK_MAIN();
