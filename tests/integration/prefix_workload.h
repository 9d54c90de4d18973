// The shared-prefix workload of the placement tests and how its prefix-cache
// hit rate is measured: groups of requests that share a long "system prompt"
// and differ in a short suffix, in random order, and the workers' own
// LoadReport counters (tokens looked up in the prefix cache, tokens found)
// read before and after a run. For tests; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/v1/llm.pb.h"
#include "tests/integration/router_cluster.h"

namespace tessera::testing {

struct PrefixWorkloadShape {
  int prefixes = 12;    // shared "system prompts"
  int prefix_len = 96;  // tokens (6 blocks of 16)
  int suffixes_per_prefix = 8;
  int max_tokens = 8;
};

struct PrefixWorkload {
  std::vector<tessera::v1::GenerateRequest> requests;  // in the order to send
  std::vector<size_t> prompt_len;
  std::vector<int> group;  // which prefix
};

// prefixes × suffixes_per_prefix greedy requests in random order; `seed`
// picks the prefixes, so each run starts from prefixes no worker has seen.
// Request ids are "place-<seed>-<i>".
PrefixWorkload MakePrefixWorkload(uint64_t seed, const PrefixWorkloadShape& shape = {});

// The prefix-cache counters summed over a cluster's replicas.
struct PrefixCounters {
  int64_t queried = 0;  // tokens looked up
  int64_t hits = 0;     // tokens found
  bool ok = true;       // every replica answered GetLoad
  double hit_rate() const { return queried == 0 ? 0.0 : static_cast<double>(hits) / queried; }
  PrefixCounters operator-(const PrefixCounters& before) const {
    return {queried - before.queried, hits - before.hits, ok && before.ok};
  }
  PrefixCounters& operator+=(const PrefixCounters& other) {
    queried += other.queried;
    hits += other.hits;
    ok = ok && other.ok;
    return *this;
  }
  std::string Describe() const;  // "hit H / queried Q = R"
};

// Reads every replica's LoadReport (GetLoad, straight at the worker).
PrefixCounters ReadPrefixCounters(const RouterCluster& cluster);

}  // namespace tessera::testing
