#include "router/policy.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::router {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<PlacementPolicy> Make(absl::string_view name, PolicyOptions options = {}) {
  if (options.seed == 0) options.seed = 42;
  absl::StatusOr<std::unique_ptr<PlacementPolicy>> policy = MakePolicy(name, options);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.ok() ? std::move(*policy) : nullptr;
}

// A request whose prompt has `blocks` full blocks (the policy only reads
// the count; the values are arbitrary).
struct Prompt {
  explicit Prompt(int blocks) : hashes(blocks) {
    for (int i = 0; i < blocks; ++i) hashes[i] = 1000 + i;
    request.block_hashes = hashes;
  }
  std::vector<uint64_t> hashes;
  PlacementRequest request;
};

Candidate C(WorkerSlot slot, int64_t load, int matched = 0) {
  return Candidate{.slot = slot, .load = load, .matched_blocks = matched};
}

TEST(MakePolicyTest, NamesAndPrefixMatchWish) {
  EXPECT_EQ(Make("round_robin")->name(), "round_robin");
  EXPECT_EQ(Make("least_load")->name(), "least_load");
  EXPECT_EQ(Make("prefix")->name(), "prefix");
  EXPECT_FALSE(Make("round_robin")->wants_prefix_match());
  EXPECT_FALSE(Make("least_load")->wants_prefix_match());
  EXPECT_TRUE(Make("prefix")->wants_prefix_match());
}

TEST(MakePolicyTest, UnknownNameNamesTheAcceptedOnes) {
  absl::StatusOr<std::unique_ptr<PlacementPolicy>> p = MakePolicy("random", {});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("random"));
  EXPECT_THAT(p.status().message(), HasSubstr("prefix, least_load, round_robin"));
  EXPECT_FALSE(MakePolicy("", {}).ok());
  EXPECT_FALSE(MakePolicy("Prefix", {}).ok());
}

TEST(MakePolicyTest, RejectsNonsenseOptions) {
  for (PolicyOptions o : {PolicyOptions{.balance_rel = 0.5}, PolicyOptions{.balance_abs = -1},
                          PolicyOptions{.load_weight = -0.1},
                          PolicyOptions{.load_weight = std::numeric_limits<double>::quiet_NaN()}}) {
    absl::StatusOr<std::unique_ptr<PlacementPolicy>> p = MakePolicy("prefix", o);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  }
}

TEST(PolicyTest, SingleCandidateIsChosen) {
  Prompt prompt(4);
  const std::vector<Candidate> one = {C(5, 100)};
  for (absl::string_view name : {"round_robin", "least_load", "prefix"}) {
    EXPECT_EQ(Make(name)->Choose(prompt.request, one), 0u) << name;
  }
}

TEST(RoundRobinTest, CyclesThroughCandidates) {
  auto policy = Make("round_robin");
  Prompt prompt(0);
  const std::vector<Candidate> c = {C(0, 9), C(1, 0), C(2, 5)};
  std::vector<size_t> picks;
  for (int i = 0; i < 7; ++i) picks.push_back(policy->Choose(prompt.request, c));
  EXPECT_THAT(picks, ::testing::ElementsAre(0, 1, 2, 0, 1, 2, 0));
}

TEST(RoundRobinTest, ConcurrentCallersShareOneCycle) {
  auto policy = Make("round_robin");
  Prompt prompt(0);
  const std::vector<Candidate> c = {C(0, 0), C(1, 0), C(2, 0)};
  constexpr int kThreads = 4;
  constexpr int kCalls = 3000;
  std::vector<std::vector<int>> counts(kThreads, std::vector<int>(3));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) counts[t][policy->Choose(prompt.request, c)]++;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int k = 0; k < 3; ++k) {
    int total = 0;
    for (int t = 0; t < kThreads; ++t) total += counts[t][k];
    EXPECT_EQ(total, kThreads * kCalls / 3) << k;  // exactly even
  }
}

TEST(LeastLoadTest, TwoCandidatesAlwaysTheLighter) {
  auto policy = Make("least_load");
  Prompt prompt(0);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(policy->Choose(prompt.request, std::vector<Candidate>{C(0, 7), C(1, 3)}), 1u);
    EXPECT_EQ(policy->Choose(prompt.request, std::vector<Candidate>{C(0, 2), C(1, 3)}), 0u);
  }
}

TEST(LeastLoadTest, NeverPicksTheHeavierOfItsTwo) {
  // Distinct loads: candidate k can only win a pair against a heavier one,
  // so the heaviest never wins, and k wins with probability
  // (number of heavier candidates) / C(n, 2).
  auto policy = Make("least_load");
  Prompt prompt(0);
  constexpr int kN = 5;
  std::vector<Candidate> c;
  for (int k = 0; k < kN; ++k) c.push_back(C(k, 10 * (kN - k)));  // slot 0 heaviest
  std::vector<int> wins(kN);
  constexpr int kTrials = 20000;
  for (int i = 0; i < kTrials; ++i) wins[policy->Choose(prompt.request, c)]++;
  EXPECT_EQ(wins[0], 0);
  for (int k = 1; k < kN; ++k) {
    const double expected = static_cast<double>(kTrials) * k / (kN * (kN - 1) / 2);
    EXPECT_NEAR(wins[k], expected, 0.1 * expected) << k;
  }
}

TEST(LeastLoadTest, EqualLoadsSpreadRandomly) {
  auto policy = Make("least_load");
  Prompt prompt(0);
  const std::vector<Candidate> c = {C(0, 3), C(1, 3), C(2, 3)};
  std::vector<int> wins(3);
  for (int i = 0; i < 3000; ++i) wins[policy->Choose(prompt.request, c)]++;
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(wins[k], 1000, 150) << k;
}

TEST(LeastLoadTest, DeterministicGivenSeed) {
  Prompt prompt(0);
  std::vector<Candidate> c;
  for (int k = 0; k < 8; ++k) c.push_back(C(k, k % 3));
  auto a = Make("least_load", {.seed = 7});
  auto b = Make("least_load", {.seed = 7});
  auto other = Make("least_load", {.seed = 8});
  int differ = 0;
  for (int i = 0; i < 200; ++i) {
    const size_t pick = a->Choose(prompt.request, c);
    EXPECT_EQ(pick, b->Choose(prompt.request, c)) << i;
    differ += pick != other->Choose(prompt.request, c);
  }
  EXPECT_GT(differ, 0);  // the seed matters
}

TEST(PrefixPolicyTest, PicksTheLongestMatchWhenBalanced) {
  auto policy = Make("prefix");
  Prompt prompt(8);
  const std::vector<Candidate> c = {C(0, 2, 2), C(1, 2, 6), C(2, 2, 4), C(3, 2, 0)};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(policy->Choose(prompt.request, c), 1u);
}

TEST(PrefixPolicyTest, LongerMatchOutweighsASmallLoadDifference) {
  auto policy = Make("prefix");
  Prompt prompt(8);
  // Balanced (3 <= 1.5 * 1 + 4). Scores: 8/8 - 0.5*3/4 = 0.625 vs 0 - 0.5*1/4.
  const std::vector<Candidate> c = {C(0, 1, 0), C(1, 3, 8)};
  EXPECT_EQ(policy->Choose(prompt.request, c), 1u);
}

TEST(PrefixPolicyTest, OutOfBalanceAbsoluteThresholdBothSides) {
  // min load 0: out of balance when max > 1.5 * 0 + 4.
  Prompt prompt(8);
  auto policy = Make("prefix");
  // At the threshold (max == 4): still balanced, the full match wins
  // (1 - 0.5 * 4/5 = 0.6 > 0).
  EXPECT_EQ(policy->Choose(prompt.request, std::vector<Candidate>{C(0, 4, 8), C(1, 0, 0)}), 0u);
  // One past it: least load (of two candidates: the lighter, always).
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(policy->Choose(prompt.request, std::vector<Candidate>{C(0, 5, 8), C(1, 0, 0)}), 1u);
  }
}

TEST(PrefixPolicyTest, OutOfBalanceRelativeThresholdBothSides) {
  // min load 10: out of balance when max > 1.5 * 10 + 4 = 19.
  Prompt prompt(8);
  auto policy = Make("prefix");
  EXPECT_EQ(policy->Choose(prompt.request, std::vector<Candidate>{C(0, 19, 8), C(1, 10, 0)}), 0u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(policy->Choose(prompt.request, std::vector<Candidate>{C(0, 20, 8), C(1, 10, 0)}), 1u);
  }
}

TEST(PrefixPolicyTest, OutOfBalanceBehavesAsPowerOfTwoChoices) {
  // Three candidates out of balance: the heaviest never wins even with the
  // whole prompt cached, and both others win sometimes.
  Prompt prompt(8);
  auto policy = Make("prefix");
  const std::vector<Candidate> c = {C(0, 50, 8), C(1, 0, 0), C(2, 1, 0)};
  std::vector<int> wins(3);
  for (int i = 0; i < 600; ++i) wins[policy->Choose(prompt.request, c)]++;
  EXPECT_EQ(wins[0], 0);
  EXPECT_GT(wins[1], 0);
  EXPECT_GT(wins[2], 0);
  EXPECT_GT(wins[1], wins[2]);  // 1 wins both pairs it is in, 2 only one
}

TEST(PrefixPolicyTest, LoadTermBreaksEqualMatches) {
  Prompt prompt(4);
  auto policy = Make("prefix");
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(
        policy->Choose(prompt.request, std::vector<Candidate>{C(0, 3, 4), C(1, 1, 4), C(2, 2, 4)}),
        1u);
    // No match anywhere: the load term alone decides.
    EXPECT_EQ(
        policy->Choose(prompt.request, std::vector<Candidate>{C(0, 3, 0), C(1, 2, 0), C(2, 1, 0)}),
        2u);
  }
}

TEST(PrefixPolicyTest, EqualScoresGoToTheLowerLoad) {
  // load_weight 1: 2/4 - 1 * 0/2 == 4/4 - 1 * 1/2 == 0.5.
  Prompt prompt(4);
  auto policy = Make("prefix", {.load_weight = 1.0});
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(policy->Choose(prompt.request, std::vector<Candidate>{C(0, 1, 4), C(1, 0, 2)}), 1u);
    EXPECT_EQ(policy->Choose(prompt.request, std::vector<Candidate>{C(0, 0, 2), C(1, 1, 4)}), 0u);
  }
}

TEST(PrefixPolicyTest, FullTiesAreBrokenRandomly) {
  Prompt prompt(4);
  auto policy = Make("prefix");
  const std::vector<Candidate> c = {C(0, 1, 3), C(1, 1, 3), C(2, 1, 3), C(3, 1, 1)};
  std::vector<int> wins(4);
  for (int i = 0; i < 3000; ++i) wins[policy->Choose(prompt.request, c)]++;
  EXPECT_EQ(wins[3], 0);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(wins[k], 1000, 150) << k;
}

TEST(PrefixPolicyTest, NoPromptBlocksMeansLeastLoaded) {
  Prompt prompt(0);
  auto policy = Make("prefix");
  EXPECT_EQ(policy->Choose(prompt.request, std::vector<Candidate>{C(0, 2, 0), C(1, 1, 0)}), 1u);
}

TEST(PrefixPolicyTest, DeterministicGivenSeed) {
  Prompt prompt(4);
  std::vector<Candidate> balanced, skewed;
  for (int k = 0; k < 6; ++k) {
    balanced.push_back(C(k, 1, 2));
    skewed.push_back(C(k, k * 10, 4));
  }
  auto a = Make("prefix", {.seed = 99});
  auto b = Make("prefix", {.seed = 99});
  for (int i = 0; i < 200; ++i) {
    const std::vector<Candidate>& c = i % 2 ? balanced : skewed;
    EXPECT_EQ(a->Choose(prompt.request, c), b->Choose(prompt.request, c)) << i;
  }
}

TEST(PrefixPolicyTest, ConcurrentChooseIsSafe) {
  Prompt prompt(4);
  auto policy = Make("prefix");
  std::vector<Candidate> c;
  for (int k = 0; k < 8; ++k) c.push_back(C(k, k % 2, 2));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        const size_t pick = policy->Choose(prompt.request, c);
        ASSERT_LT(pick, c.size());
        ASSERT_EQ(c[pick].load, 0);  // only the load-0 ones tie on top
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace
}  // namespace tessera::router
