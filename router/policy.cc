#include "router/policy.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"

namespace tessera::router {
namespace {

uint64_t Mix64(uint64_t x) {  // SplitMix64's finaliser
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Random choices for Choose, lock-free: call k of a policy gets its own
// SplitMix64 stream started from hash(seed, k), so a policy's choices are a
// function of its seed and the order of its calls.
class Randomness {
 public:
  class Stream {
   public:
    explicit Stream(uint64_t state) : state_(state) {}
    uint64_t Next() {
      state_ += 0x9e3779b97f4a7c15ULL;
      return Mix64(state_);
    }
    // Uniform in [0, n), n >= 1 (Lemire's multiply-shift; the bias is
    // below n / 2^64).
    size_t Below(size_t n) {
      return static_cast<size_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
    }

   private:
    uint64_t state_;
  };

  explicit Randomness(uint64_t seed) : seed_(seed != 0 ? seed : ClockSeed()) {}
  Stream Draw() {
    return Stream(Mix64(seed_ ^ Mix64(calls_.fetch_add(1, std::memory_order_relaxed))));
  }

 private:
  static uint64_t ClockSeed() {
    std::random_device device;
    return Mix64(static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^
                 (static_cast<uint64_t>(device()) << 32));
  }

  const uint64_t seed_;
  std::atomic<uint64_t> calls_{0};
};

// Power of two choices: two distinct random candidates, the lighter wins
// (a coin decides between equal loads).
size_t PowerOfTwoChoices(std::span<const Candidate> candidates, Randomness::Stream& random) {
  const size_t n = candidates.size();
  if (n == 1) return 0;
  size_t a = random.Below(n);
  size_t b = random.Below(n - 1);
  if (b >= a) ++b;
  if (candidates[a].load != candidates[b].load) {
    return candidates[a].load < candidates[b].load ? a : b;
  }
  return random.Below(2) == 0 ? a : b;
}

class RoundRobinPolicy final : public PlacementPolicy {
 public:
  absl::string_view name() const override { return "round_robin"; }
  bool wants_prefix_match() const override { return false; }
  size_t Choose(const PlacementRequest&, std::span<const Candidate> candidates) override {
    return static_cast<size_t>(next_.fetch_add(1, std::memory_order_relaxed) % candidates.size());
  }

 private:
  std::atomic<uint64_t> next_{0};
};

class LeastLoadPolicy final : public PlacementPolicy {
 public:
  explicit LeastLoadPolicy(const PolicyOptions& options) : random_(options.seed) {}
  absl::string_view name() const override { return "least_load"; }
  bool wants_prefix_match() const override { return false; }
  size_t Choose(const PlacementRequest&, std::span<const Candidate> candidates) override {
    if (candidates.size() == 1) return 0;
    Randomness::Stream stream = random_.Draw();
    return PowerOfTwoChoices(candidates, stream);
  }

 private:
  Randomness random_;
};

class PrefixPolicy final : public PlacementPolicy {
 public:
  explicit PrefixPolicy(const PolicyOptions& options) : options_(options), random_(options.seed) {}
  absl::string_view name() const override { return "prefix"; }
  bool wants_prefix_match() const override { return true; }

  size_t Choose(const PlacementRequest& request, std::span<const Candidate> candidates) override {
    return Decide(request, candidates).index;
  }

  Choice Decide(const PlacementRequest& request, std::span<const Candidate> candidates) override {
    const size_t n = candidates.size();
    // By score: a prefix match when the chosen worker holds part of the prompt.
    auto by_score = [&](size_t i) {
      return Choice{i, candidates[i].matched_blocks > 0 ? PlacementReason::kPrefixMatch
                                                        : PlacementReason::kPolicy};
    };
    if (n == 1) return by_score(0);
    int64_t min_load = Load(candidates[0]);
    int64_t max_load = min_load;
    for (const Candidate& c : candidates) {
      min_load = std::min(min_load, Load(c));
      max_load = std::max(max_load, Load(c));
    }
    std::optional<Randomness::Stream> random;
    auto stream = [&]() -> Randomness::Stream& {
      if (!random) random.emplace(random_.Draw());
      return *random;
    };
    // Out of balance: cache affinity would pile more onto the busy workers.
    if (static_cast<double>(max_load) > options_.balance_rel * static_cast<double>(min_load) +
                                            static_cast<double>(options_.balance_abs)) {
      return Choice{PowerOfTwoChoices(candidates, stream()), PlacementReason::kBalanceFallback};
    }

    // score = matched fraction of the prompt - load_weight * load / (max_load + 1);
    // ties go to the lower load, then to a uniformly random one of the tied.
    const size_t prompt_blocks = request.block_hashes.size();
    const double load_scale = options_.load_weight / static_cast<double>(max_load + 1);
    auto score = [&](const Candidate& c) {
      double fraction = 0.0;
      if (prompt_blocks > 0) {
        const size_t matched = std::min<size_t>(std::max(c.matched_blocks, 0), prompt_blocks);
        fraction = static_cast<double>(matched) / static_cast<double>(prompt_blocks);
      }
      return fraction - load_scale * static_cast<double>(Load(c));
    };
    constexpr double kTie = 1e-9;
    size_t best = 0;
    double best_score = score(candidates[0]);
    size_t tied = 1;  // candidates equal to `best` in score and load so far
    for (size_t i = 1; i < n; ++i) {
      const double s = score(candidates[i]);
      if (s > best_score + kTie) {
        best = i;
        best_score = s;
        tied = 1;
      } else if (s >= best_score - kTie) {
        const int64_t load = Load(candidates[i]);
        const int64_t best_load = Load(candidates[best]);
        if (load < best_load) {
          best = i;
          best_score = std::max(best_score, s);
          tied = 1;
        } else if (load == best_load) {
          // Reservoir sampling: each of the `tied` stays with chance 1/tied.
          ++tied;
          if (stream().Below(tied) == 0) best = i;
        }
      }
    }
    return by_score(best);
  }

 private:
  static int64_t Load(const Candidate& c) { return std::max<int64_t>(c.load, 0); }

  const PolicyOptions options_;
  Randomness random_;
};

absl::Status ValidateOptions(const PolicyOptions& o) {
  if (!std::isfinite(o.balance_rel) || o.balance_rel < 1.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy balance_rel must be a number >= 1, got ", o.balance_rel));
  }
  if (o.balance_abs < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy balance_abs must be >= 0, got ", o.balance_abs));
  }
  if (!std::isfinite(o.load_weight) || o.load_weight < 0.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy load_weight must be a number >= 0, got ", o.load_weight));
  }
  return absl::OkStatus();
}

}  // namespace

const char* PlacementReasonName(PlacementReason reason) {
  switch (reason) {
    case PlacementReason::kPrefixMatch:
      return "prefix_match";
    case PlacementReason::kBalanceFallback:
      return "balance_fallback";
    case PlacementReason::kPolicy:
      return "policy";
  }
  return "policy";
}

absl::StatusOr<std::unique_ptr<PlacementPolicy>> MakePolicy(absl::string_view name,
                                                            const PolicyOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  if (name == "prefix") return std::make_unique<PrefixPolicy>(options);
  if (name == "least_load") return std::make_unique<LeastLoadPolicy>(options);
  if (name == "round_robin") return std::make_unique<RoundRobinPolicy>();
  return absl::InvalidArgumentError(absl::StrCat("unknown placement policy '", name,
                                                 "' (accepted: prefix, least_load, round_robin)"));
}

}  // namespace tessera::router
