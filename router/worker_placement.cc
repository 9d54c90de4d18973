// WorkerPool::Place and RecordOutcome: choosing a worker for a request and
// feeding its outcome to that worker's circuit breaker.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/api/wire_names.h"
#include "common/check.h"
#include "common/logging.h"
#include "router/worker_pool.h"
#include "router/worker_pool_impl.h"

namespace tessera::router {

namespace {

constexpr size_t kMaxWorkersInMessage = 8;

}  // namespace

absl::StatusOr<Lease> WorkerPool::Place(const PlacementRequest& request,
                                        std::span<const std::string> exclude) {
  const absl::Time now = absl::Now();
  std::vector<Candidate> candidates;
  std::vector<Impl::EntryPtr> entries;
  std::vector<std::string> others;  // why the known workers are not candidates
  size_t known = 0;
  {
    absl::ReaderMutexLock lock(&impl_->mu);
    known = impl_->by_id.size();
    for (const auto& [id, e] : impl_->by_id) {
      std::string why;
      if (std::find(exclude.begin(), exclude.end(), id) != exclude.end()) {
        why = "already tried";
      } else {
        absl::MutexLock elock(&e->mu);
        if (Impl::EligibleLocked(*e, now)) {
          candidates.push_back(Candidate{e->slot, Impl::LoadLocked(*e), 0});
          entries.push_back(e);
          continue;
        }
        why = e->healthy && !e->breaker.WouldAllow(now)
                  ? "circuit open"
                  : std::string(api::WorkerStateWord(Impl::StateLocked(*e, now)));
      }
      if (others.size() < kMaxWorkersInMessage) others.push_back(absl::StrCat(id, " ", why));
    }
  }
  auto none = [&](absl::string_view extra) {
    std::string list = absl::StrJoin(others, ", ");
    if (known > others.size() + candidates.size()) absl::StrAppend(&list, ", ...");
    return absl::UnavailableError(absl::StrCat("no eligible worker (", known, " known",
                                               known > 0 ? ": " : "", list, ")", extra));
  };
  if (candidates.empty()) return none("");
  if (impl_->policy->wants_prefix_match() && !request.block_hashes.empty()) {
    std::vector<WorkerSlot> slots(candidates.size());
    std::vector<int> matched(candidates.size(), 0);
    for (size_t i = 0; i < candidates.size(); ++i) slots[i] = candidates[i].slot;
    impl_->index.MatchPrefix(request.block_hashes, slots, std::span<int>(matched));
    for (size_t i = 0; i < candidates.size(); ++i) candidates[i].matched_blocks = matched[i];
  }
  while (!candidates.empty()) {
    const Choice choice = impl_->policy->Decide(request, candidates);
    const size_t i = choice.index;
    TESSERA_CHECK(i < candidates.size(), "policy ", impl_->policy->name(), " chose ", i, " of ",
                  candidates.size());
    Impl::EntryPtr& e = entries[i];
    {
      absl::MutexLock elock(&e->mu);
      // Still eligible (state may have moved since the scan), and the breaker
      // lets this request through (in half_open only one caller gets the probe).
      if (Impl::EligibleLocked(*e, now) && e->breaker.AllowRequest(now)) {
        const bool probe = e->breaker.state() == CircuitBreaker::State::kHalfOpen;
        e->in_flight.fetch_add(1, std::memory_order_acq_rel);
        e->requests_routed.fetch_add(1, std::memory_order_relaxed);
        Lease lease(e, probe);
        lease.reason_ = choice.reason;
        lease.matched_blocks_ = candidates[i].matched_blocks;
        return lease;
      }
    }
    others.push_back(absl::StrCat(e->id, " taken meanwhile"));
    candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(i));
    entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return none("");
}

void WorkerPool::RecordOutcome(const Lease& lease, Outcome outcome, absl::string_view error) {
  if (lease.entry_ == nullptr) return;
  WorkerRecord& e = *lease.entry_;
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&e.mu);
  lease.outcome_recorded_ = true;
  switch (outcome) {
    case Outcome::kSuccess:
      e.breaker.RecordSuccess();
      return;
    case Outcome::kWorkerError: {
      const CircuitBreaker::State before = e.breaker.state();
      e.breaker.RecordFailure(now);
      e.last_error =
          error.empty() ? std::string("a request failed on this worker") : std::string(error);
      if (before != CircuitBreaker::State::kOpen &&
          e.breaker.state() == CircuitBreaker::State::kOpen) {
        spdlog::warn("worker {} ({}): circuit open after {} consecutive failure(s): {}", e.id,
                     e.address, e.breaker.consecutive_failures(), e.last_error);
      }
      return;
    }
    case Outcome::kRejected:
    case Outcome::kCancelled:
      // No signal about the worker; a half-open probe must not stay taken.
      if (lease.probe_) e.breaker.ReleaseProbe();
      return;
  }
}

}  // namespace tessera::router
