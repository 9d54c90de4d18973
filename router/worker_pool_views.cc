// WorkerPool's read-only views: per-worker listings, the cluster status,
// WaitEligible. (The cluster parameters: worker_cluster_params.cc.)
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "router/worker_pool.h"
#include "router/worker_pool_impl.h"

namespace tessera::router {

std::vector<v1::WorkerInfo> WorkerPool::List() const {
  const absl::Time now = absl::Now();
  std::vector<v1::WorkerInfo> out;
  absl::ReaderMutexLock lock(&impl_->mu);
  out.reserve(impl_->by_id.size());
  for (const auto& [id, e] : impl_->by_id) {  // btree_map: sorted by id
    absl::MutexLock elock(&e->mu);
    out.push_back(Impl::InfoLocked(*e, now));
  }
  return out;
}

std::vector<WorkerPool::WorkerHealth> WorkerPool::Health() const {
  const absl::Time now = absl::Now();
  std::vector<WorkerHealth> out;
  absl::ReaderMutexLock lock(&impl_->mu);
  out.reserve(impl_->by_id.size());
  for (const auto& [id, e] : impl_->by_id) {
    absl::MutexLock elock(&e->mu);
    out.push_back(WorkerHealth{id, Impl::StateLocked(*e, now), e->healthy, e->breaker.state(),
                               e->in_flight.load(std::memory_order_relaxed)});
  }
  return out;
}

std::optional<v1::WorkerInfo> WorkerPool::Get(absl::string_view id) const {
  absl::ReaderMutexLock lock(&impl_->mu);
  Impl::EntryPtr e = impl_->FindLocked(id);
  if (e == nullptr) return std::nullopt;
  absl::MutexLock elock(&e->mu);
  return Impl::InfoLocked(*e, absl::Now());
}

v1::ClusterStatus WorkerPool::Status() const {
  v1::ClusterStatus status;
  status.set_policy(std::string(impl_->policy->name()));
  int64_t queried = 0, hit = 0;
  for (const v1::WorkerInfo& w : List()) {
    status.set_workers(status.workers() + 1);
    switch (w.state()) {
      case v1::WorkerInfo::STATE_HEALTHY:
        status.set_healthy(status.healthy() + 1);
        break;
      case v1::WorkerInfo::STATE_DRAINING:
        status.set_draining(status.draining() + 1);
        break;
      default:
        status.set_unhealthy(status.unhealthy() + 1);
        break;
    }
    // Last reports of every known worker (an ejected worker's counters stay
    // in the sums, so deltas of these do not jump when one is ejected).
    status.set_running(status.running() + w.load().running());
    status.set_waiting(status.waiting() + w.load().waiting());
    queried += w.load().prefix_cache_queried_tokens();
    hit += w.load().prefix_cache_hit_tokens();
  }
  status.set_prefix_cache_queried_tokens(queried);
  status.set_prefix_cache_hit_tokens(hit);
  status.set_prefix_cache_hit_rate(queried > 0 ? static_cast<double>(hit) / queried : 0.0);
  return status;
}

bool WorkerPool::WaitEligible(absl::string_view id, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  Impl::EntryPtr e;
  {
    absl::ReaderMutexLock lock(&impl_->mu);
    auto it = impl_->by_id.find(id);
    if (it == impl_->by_id.end()) return false;
    e = it->second;
  }
  // Re-evaluated whenever e->mu is released (every poll and outcome), so a
  // breaker's open timer running out is noticed by the next poll.
  struct Ready {
    const WorkerRecord* e;
    bool operator()() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return e->removed || Impl::EligibleLocked(*e, absl::Now());
    }
  } ready{e.get()};
  absl::MutexLock lock(&e->mu);
  e->mu.AwaitWithDeadline(absl::Condition(&ready), deadline);
  return !e->removed && Impl::EligibleLocked(*e, absl::Now());
}

const PlacementPolicy& WorkerPool::policy() const { return *impl_->policy; }

PrefixIndex& WorkerPool::index() { return impl_->index; }

}  // namespace tessera::router
