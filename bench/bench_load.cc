#include "bench/bench_load.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/check.h"

namespace tessera::bench {

// ---------------------------------------------------------------- RequestSource

RequestSource::RequestSource(const Options& o)
    : o_(o), rng_(o.seed * 0x9E3779B97F4A7C15ULL + 1), token_(3, o.vocab_size - 1) {
  if (o_.workload == Workload::kSharedPrefix) {
    for (int g = 0; g < o_.groups; ++g) prefixes_.push_back(RandomTokens(o_.prefix_len));
  }
  if (o_.workload == Workload::kMultiTurn) {
    sessions_.resize(o_.sessions);
    for (int s = 0; s < o_.sessions; ++s) idle_.push_back(s);
  }
}

RequestSource::RequestSource(const Options& o, std::vector<Planned> fixed)
    : o_(o), rng_(0), token_(3, 3), fixed_(std::move(fixed)) {}

std::vector<int32_t> RequestSource::RandomTokens(int n) {
  std::vector<int32_t> t(n);
  for (int32_t& id : t) id = token_(rng_);
  return t;
}

Planned RequestSource::Next() {
  if (!fixed_.empty()) {
    TESSERA_CHECK(next_index_ < static_cast<int64_t>(fixed_.size()), "past the replayed calls");
    return fixed_[next_index_++];
  }
  Planned p;
  p.index = next_index_++;
  p.request_id = absl::StrCat("bench-", o_.seed, "-", p.index);
  switch (o_.workload) {
    case Workload::kRandom:
      p.prompt = RandomTokens(Uniform(o_.prompt_len, o_.prompt_len_max));
      break;
    case Workload::kSharedPrefix: {
      p.prompt = prefixes_[Uniform(0, o_.groups - 1)];
      const std::vector<int32_t> suffix = RandomTokens(o_.suffix_len);
      p.prompt.insert(p.prompt.end(), suffix.begin(), suffix.end());
      break;
    }
    case Workload::kMultiTurn: {
      p.session = idle_.front();
      idle_.pop_front();
      Session& s = sessions_[p.session];
      if (s.turn == 0 || s.turn >= o_.turns) {  // a new conversation
        s.turn = 0;
        s.history = RandomTokens(Uniform(o_.prompt_len, o_.prompt_len_max));
      } else {
        const std::vector<int32_t> user = RandomTokens(o_.turn_len);
        s.history.insert(s.history.end(), user.begin(), user.end());
      }
      ++s.turn;
      p.prompt = s.history;
      break;
    }
  }
  p.max_tokens = Uniform(o_.max_tokens, o_.max_tokens_max);
  if (o_.temperature > 0) {
    p.temperature = o_.temperature;
    // splitmix64 of (seed, index): distinct, reproducible per request.
    uint64_t z = o_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(p.index) + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    p.seed = z ^ (z >> 31);
  }
  return p;
}

void RequestSource::Done(const Planned& p, bool ok, const std::vector<int32_t>& output) {
  if (p.session < 0) return;
  Session& s = sessions_[p.session];
  if (ok) {
    s.history.insert(s.history.end(), output.begin(), output.end());
  } else {
    s.turn = 0;
  }
  idle_.push_back(p.session);
}

// ---------------------------------------------------------------- Driver

Driver::Driver(const Options& o, Transport* transport, Observer observer,
               std::optional<std::vector<Planned>> fixed)
    : o_(o),
      transport_(transport),
      observer_(std::move(observer)),
      source_(fixed.has_value() ? RequestSource(o, *std::move(fixed)) : RequestSource(o)),
      arrival_rng_(o.seed * 31 + 7) {}

std::vector<CallRecord> Driver::Run(double* wall_s) {
  const auto start = Clock::now();
  const bool timed = o_.duration_s > 0;
  const auto window = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(timed ? o_.duration_s : 0.0));
  const auto arrivals_end = start + window;
  const absl::Time arrivals_end_abs = absl::Now() + absl::FromChrono(window);
  auto next_arrival = start;
  int64_t sent = 0;
  while (o_.requests == 0 || sent < o_.requests) {
    if (o_.rate > 0) {
      if (timed && next_arrival >= arrivals_end) break;
      std::this_thread::sleep_until(next_arrival);
    } else if (timed && Clock::now() >= arrivals_end) {
      break;
    }
    Planned plan;
    {
      absl::MutexLock lock(&mu_);
      // A free slot (and, multi-turn, an idle session); past the end of
      // the arrivals window nothing more is sent.
      auto can_send = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return (o_.concurrency == 0 || in_flight_ < o_.concurrency) && source_.Ready();
      };
      if (timed) {
        if (!mu_.AwaitWithDeadline(absl::Condition(&can_send), arrivals_end_abs)) break;
      } else {
        mu_.Await(absl::Condition(&can_send));
      }
      plan = source_.Next();
      ++in_flight_;
    }
    const auto scheduled = o_.rate > 0 ? next_arrival : Clock::now();
    transport_->Start(std::move(plan), scheduled, sent, this);
    ++sent;
    if (o_.rate > 0) next_arrival += NextGap();
  }
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* in_flight) { return *in_flight == 0; }, &in_flight_));
  *wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  return std::move(records_);
}

void Driver::Finished(const Planned& plan, CallRecord record, const std::vector<int32_t>& output) {
  absl::MutexLock lock(&mu_);
  if (observer_ != nullptr) observer_(plan, record, output);
  source_.Done(plan, record.ok(), output);
  records_.push_back(std::move(record));
  --in_flight_;
}

Clock::duration Driver::NextGap() {
  const double seconds =
      o_.poisson ? std::exponential_distribution<double>(o_.rate)(arrival_rng_) : 1.0 / o_.rate;
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace tessera::bench
