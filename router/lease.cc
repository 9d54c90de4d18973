// Lease: one request's hold on a worker (router/worker_pool.h).
#include <utility>

#include "absl/synchronization/mutex.h"
#include "router/worker_pool.h"
#include "router/worker_pool_impl.h"

namespace tessera::router {

Lease::Lease(std::shared_ptr<WorkerRecord> record, bool probe)
    : entry_(std::move(record)), probe_(probe) {}

Lease::Lease(Lease&& other) noexcept
    : entry_(std::move(other.entry_)),
      probe_(other.probe_),
      outcome_recorded_(other.outcome_recorded_),
      reason_(other.reason_),
      matched_blocks_(other.matched_blocks_) {
  other.entry_ = nullptr;
}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    entry_ = std::move(other.entry_);
    other.entry_ = nullptr;
    probe_ = other.probe_;
    outcome_recorded_ = other.outcome_recorded_;
    reason_ = other.reason_;
    matched_blocks_ = other.matched_blocks_;
  }
  return *this;
}

Lease::~Lease() { Release(); }

void Lease::Release() {
  if (entry_ == nullptr) return;
  if (probe_ && !outcome_recorded_) {
    absl::MutexLock lock(&entry_->mu);
    entry_->breaker.ReleaseProbe();  // the probe never reported: let another one through
  }
  entry_->in_flight.fetch_sub(1, std::memory_order_acq_rel);
  entry_ = nullptr;
}

const std::string& Lease::worker_id() const { return entry_->id; }
const std::string& Lease::address() const { return entry_->address; }
v1::Worker::Stub* Lease::stub() const { return entry_->stub.get(); }
WorkerSlot Lease::slot() const { return entry_->slot; }

}  // namespace tessera::router
