// Fair sharing between tenants through a real tessera-router and a --dummy
// tiny replica (issue #17's second Must-show). Two tenants from an
// --api-keys file, equal weights. The router has as many slots as the
// replica's batch (--max-concurrent-requests = --max-num-seqs) and keeps one
// as headroom (--admission-headroom 1).
//   1. unloaded: the short tenant alone sends short requests one after the
//      other; their TTFT p99 is the baseline;
//   2. flood alone: the flood tenant keeps far more long requests going than
//      there are slots; its throughput is the cluster's capacity as the
//      flood can use it;
//   3. loaded: the short tenant sends the same short requests while the
//      flood goes on.
// Must hold: every request succeeds; the short tenant's loaded TTFT p99 is
// within 2 x its unloaded p99, plus two loaded engine steps (the step in
// flight when it arrives, and its own prefill step), plus a fifth of one
// flood request for the CPU contention of a loaded 2-core machine, all
// measured here; that bound is below one flood request's duration; the
// flood's throughput while the short tenant runs stays at >= 40% of what it
// had alone (it keeps max - 1 slots; the rest is the short tenant's CPU).
// With first-come-first-served admission (the router before tenants) a
// short request waits behind the flood's queue: about 17 / 7 flood requests,
// over a second here.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/process.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;

constexpr int kSlots = 8;          // router slots = the replica's max_num_seqs
constexpr int kFloodStreams = 24;  // 3x the slots: a deep queue at the router
constexpr int kFloodPrompt = 32;
constexpr int kFloodTokens = 512;  // a flood request lasts hundreds of steps
constexpr int kShortPrompt = 8;
constexpr int kShortTokens = 4;
// p99 by nearest rank over 200 samples ignores the two slowest: a loaded
// 2-core machine preempts a process now and then for tens of ms.
constexpr int kShortRequests = 200;
constexpr char kFloodKey[] = "sk-flood-0000001";
constexpr char kShortKey[] = "sk-short-0000001";

SteadyTime Now() { return std::chrono::steady_clock::now(); }

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Nearest-rank percentile of `v` (0 < q <= 1).
double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// `count` short requests of the short tenant, one after the other; their TTFTs (s).
std::vector<double> ShortTtfts(RouterCluster& cluster, int first_index, int count) {
  std::vector<double> ttfts;
  CallOptions options;
  options.api_key = kShortKey;
  options.deadline = milliseconds(60000);
  for (int i = 0; i < count; ++i) {
    const int index = first_index + i;
    const CallRecord r = RunLlmGenerate(
        cluster.llm(), GreedyLlmRequest(VariedPrompt(7, index, kShortPrompt), kShortTokens),
        options);
    ExpectCompleteCall(r, kShortPrompt, kShortTokens, "short request " + std::to_string(index));
    if (r.ok() && r.first_token.has_value()) ttfts.push_back(Seconds(*r.first_token - r.start));
  }
  return ttfts;
}

// Flood tokens per second over `window`, counted as they stream.
double FloodRate(const std::atomic<int64_t>& tokens, milliseconds window) {
  const int64_t before = tokens.load();
  const SteadyTime start = Now();
  std::this_thread::sleep_for(window);  // a measurement window, not synchronisation
  return static_cast<double>(tokens.load() - before) / Seconds(Now() - start);
}

TEST(RouterTenantsTest, AShortTenantKeepsItsTtftWhileAFloodUsesTheSpareCapacity) {
  const std::string dir = MakeTempDir("tenants");
  const std::string keys = dir + "/keys.json";
  {
    std::ofstream out(keys);
    out << R"({"tenants": [{"name": "flood", "key": ")" << kFloodKey << R"(", "weight": 1},
                          {"name": "short", "key": ")"
        << kShortKey << R"(", "weight": 1}]})";
  }
  RouterClusterOptions options;
  options.replicas = 1;
  options.worker_args = {
      "--dummy",         "tiny",          "--threads",      "1",
      "--num-kv-blocks", "2048",          "--max-num-seqs", std::to_string(kSlots),
      "--log-level",     WorkerLogLevel()};
  options.router.extra_args = {
      "--api-keys",           keys,  "--max-concurrent-requests", std::to_string(kSlots),
      "--admission-headroom", "1",   "--max-queued-requests",     "1000",
      "--queue-timeout",      "120", "--request-log=false"};
  std::string error;
  auto cluster = RouterCluster::Start(options, &error);
  ASSERT_NE(cluster, nullptr) << error;

  ShortTtfts(*cluster, 0, 5);  // warm-up: connections, first allocations
  const std::vector<double> unloaded = ShortTtfts(*cluster, 100, kShortRequests);
  ASSERT_EQ(unloaded.size(), static_cast<size_t>(kShortRequests));
  const double unloaded_p99 = Percentile(unloaded, 0.99);

  std::atomic<int64_t> flood_tokens{0};
  CallOptions flood_options;
  flood_options.api_key = kFloodKey;
  flood_options.deadline = milliseconds(120000);
  flood_options.on_message = [&flood_tokens](const tessera::v1::GenerateResponse& m) {
    flood_tokens.fetch_add(m.token_ids_size());
  };
  LoadDriver flood(
      cluster->llm(), kFloodStreams,
      [](int i) -> std::optional<tessera::v1::GenerateRequest> {
        return GreedyLlmRequest(VariedPrompt(11, i, kFloodPrompt), kFloodTokens);
      },
      flood_options);
  ASSERT_TRUE(flood.WaitCompleted(kSlots, milliseconds(60000)))
      << "the flood did not get going: " << cluster->RouterLogTail();
  const double alone_rate = FloodRate(flood_tokens, milliseconds(3000));

  const int64_t before_loaded = flood_tokens.load();
  const SteadyTime loaded_start = Now();
  const std::vector<double> loaded = ShortTtfts(*cluster, 1000, kShortRequests);
  const double loaded_rate =
      static_cast<double>(flood_tokens.load() - before_loaded) / Seconds(Now() - loaded_start);
  const std::vector<CallRecord> flood_records = flood.StopAndJoin();

  // The engine's step under load: the flood's time per output token; and
  // how long a flood request holds its slot.
  std::vector<double> steps;
  std::vector<double> flood_durations;
  for (const CallRecord& r : flood_records) {
    ExpectCompleteCall(r, kFloodPrompt, kFloodTokens, "flood request " + std::to_string(r.index));
    if (r.ok() && r.first_token.has_value()) {
      steps.push_back(Seconds(r.end - *r.first_token) / (kFloodTokens - 1));
      flood_durations.push_back(Seconds(r.end - *r.first_token));
    }
  }
  ASSERT_EQ(loaded.size(), static_cast<size_t>(kShortRequests));
  ASSERT_FALSE(steps.empty());
  const double step = Percentile(steps, 0.5);
  const double loaded_p99 = Percentile(loaded, 0.99);
  // Under the flood, the router and the worker are busy relaying thousands of
  // tokens a second on a 2-core machine shared with other work: each hop of
  // a short request waits for a core. The allowance for that is a fifth of
  // one flood request: a short request that waited for even one flood
  // request to end (first-come-first-served does many) exceeds the bound.
  const double flood_request = Percentile(flood_durations, 0.5);
  const double bound = 2 * unloaded_p99 + 2 * step + 0.2 * flood_request;
  std::printf(
      "short TTFT p50/p99/max: unloaded %.1f/%.1f/%.1f ms, loaded %.1f/%.1f/%.1f ms (bound "
      "%.1f ms); loaded step %.2f ms; a flood request holds its slot %.0f ms; flood %.0f tok/s "
      "alone, %.0f tok/s with the short tenant; %zu flood requests\n",
      Percentile(unloaded, 0.5) * 1e3, unloaded_p99 * 1e3, Percentile(unloaded, 1) * 1e3,
      Percentile(loaded, 0.5) * 1e3, loaded_p99 * 1e3, Percentile(loaded, 1) * 1e3, bound * 1e3,
      step * 1e3, flood_request * 1e3, alone_rate, loaded_rate, flood_records.size());
  // The bound means something only if waiting for one flood request to end
  // (what first-come-first-served admission does, many times over) breaks it.
  EXPECT_LT(bound, flood_request) << "the flood requests are too short for this test";
  EXPECT_LE(loaded_p99, bound) << "the short tenant's TTFT p99 under the flood";
  // The flood keeps (max - 1) of the slots; its rate also drops by the CPU
  // the short tenant's own client and requests take on this machine.
  EXPECT_GE(loaded_rate, 0.4 * alone_rate) << "the flood lost its share of the spare capacity";
  EXPECT_GT(alone_rate, 0);
  cluster->PrintLogsIfTestFailed();
}

}  // namespace
}  // namespace tessera::testing
