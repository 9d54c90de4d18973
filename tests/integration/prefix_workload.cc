#include "tests/integration/prefix_workload.h"

#include <algorithm>
#include <optional>
#include <random>
#include <utility>

#include "absl/strings/str_format.h"

namespace tessera::testing {

PrefixWorkload MakePrefixWorkload(uint64_t seed, const PrefixWorkloadShape& shape) {
  std::vector<std::vector<int32_t>> prefixes;
  for (int p = 0; p < shape.prefixes; ++p) {
    prefixes.push_back(VariedPrompt(seed, p, shape.prefix_len));
  }
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int> suffix_len(4, 20);
  std::uniform_int_distribution<int32_t> id(3, 511);
  std::vector<std::pair<int, std::vector<int32_t>>> prompts;
  for (int p = 0; p < shape.prefixes; ++p) {
    for (int s = 0; s < shape.suffixes_per_prefix; ++s) {
      std::vector<int32_t> prompt = prefixes[p];
      const int n = suffix_len(rng);
      for (int k = 0; k < n; ++k) prompt.push_back(id(rng));
      prompts.emplace_back(p, std::move(prompt));
    }
  }
  std::shuffle(prompts.begin(), prompts.end(), rng);
  PrefixWorkload w;
  for (size_t i = 0; i < prompts.size(); ++i) {
    w.requests.push_back(GreedyLlmRequest(prompts[i].second, shape.max_tokens,
                                          absl::StrFormat("place-%d-%d", seed, i)));
    w.prompt_len.push_back(prompts[i].second.size());
    w.group.push_back(prompts[i].first);
  }
  return w;
}

std::string PrefixCounters::Describe() const {
  return absl::StrFormat("hit %d / queried %d = %.3f%s", hits, queried, hit_rate(),
                         ok ? "" : " (some replica did not answer GetLoad)");
}

PrefixCounters ReadPrefixCounters(const RouterCluster& cluster) {
  PrefixCounters c;
  for (int i = 0; i < cluster.replicas(); ++i) {
    const std::optional<tessera::v1::LoadReport> load = cluster.ReplicaLoad(i);
    if (!load.has_value()) {
      c.ok = false;
      continue;
    }
    c.queried += load->prefix_cache_queried_tokens();
    c.hits += load->prefix_cache_hit_tokens();
  }
  return c;
}

}  // namespace tessera::testing
