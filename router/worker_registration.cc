// WorkerPool's registrations (Registry.RegisterWorker / Heartbeat): the
// binding of a worker id to (address, incarnation), take-over rules, and the
// limits on registrations (count and rate).
//
// A registration proves nothing about who sends it, so the router trusts its
// own health polls instead: an id registered and passing its health checks at
// one address cannot be taken over from another address unless the
// registration carries the same incarnation (the random id the worker
// process picked at start, known only to it and the router).
#include <algorithm>
#include <string>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "router/worker_pool.h"
#include "router/worker_pool_impl.h"

namespace tessera::router {
namespace {

constexpr size_t kMaxIncarnationBytes = 64;

absl::Status ValidateIncarnation(const std::string& incarnation) {
  const bool printable = std::all_of(incarnation.begin(), incarnation.end(),
                                     [](char c) { return c > ' ' && c < 0x7f; });
  if (incarnation.size() <= kMaxIncarnationBytes && printable) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("incarnation: must be at most ", kMaxIncarnationBytes,
                   " bytes of printable ASCII without spaces, got ", incarnation.size(), " bytes"));
}

}  // namespace

bool WorkerPool::Impl::MayTakeOverLocked(const WorkerRecord& e, const std::string& address,
                                         const std::string& incarnation) const {
  if (!incarnation.empty() && incarnation == e.incarnation) return true;  // the same process
  // Whatever answers at an address is what the router talks to there.
  if (e.address == address) return true;
  // The router's own polls say the old one is gone (or refused).
  return !e.healthy && e.poll_failures >= options.unhealthy_threshold;
}

WorkerPool::Impl::RegistrationPlan WorkerPool::Impl::PlanRegistrationLocked(
    const std::string& address, const std::string& id, const std::string& incarnation,
    absl::Time now) {
  RegistrationPlan plan;
  auto a = by_address.find(address);
  const EntryPtr at_address = a == by_address.end() ? nullptr : a->second;
  EntryPtr with_id;
  if (auto i = id.empty() ? by_id.end() : by_id.find(id); i != by_id.end()) with_id = i->second;

  if (at_address != nullptr) {
    absl::MutexLock lock(&at_address->mu);
    if (at_address->source != v1::WorkerInfo::SOURCE_REGISTERED) {
      // Known from another source: nothing to register (heartbeats are known).
      plan.settled = InfoLocked(*at_address, now);
      return plan;
    }
    if (id.empty() || at_address->id == id) {
      // The same worker again; a new incarnation is the worker restarted at
      // this address (the old incarnation's heartbeats no longer count).
      if (at_address->incarnation != incarnation) {
        spdlog::info("worker {} ({}) registered again by a new process", at_address->id, address);
        at_address->incarnation = incarnation;
        at_address->refresh_model = true;
      }
      at_address->last_heartbeat = now;
      plan.settled = InfoLocked(*at_address, now);
      return plan;
    }
    // Registered at this address under another id: the process here now
    // calls itself `id`.
    plan.replace.emplace_back(at_address,
                              absl::StrCat("its address was registered again as '", id, "'"));
  }
  if (with_id != nullptr) {
    if (with_id->source != v1::WorkerInfo::SOURCE_REGISTERED) {
      plan.replace.clear();
      plan.settled = absl::AlreadyExistsError(
          absl::StrCat("worker id '", id, "' is already used by ", with_id->address));
      return plan;
    }
    absl::MutexLock lock(&with_id->mu);
    if (!MayTakeOverLocked(*with_id, address, incarnation)) {
      plan.replace.clear();
      plan.settled = absl::AlreadyExistsError(
          absl::StrCat("worker id '", id, "' is registered at ", with_id->address,
                       " by another process, which passes its health checks; a registration from ",
                       address, " needs that process's incarnation, or is accepted once ",
                       with_id->address, " fails its health checks"));
      return plan;
    }
    plan.replace.emplace_back(with_id, absl::StrCat("registered again from ", address));
  }
  return plan;
}

absl::Status WorkerPool::Impl::CheckRegistrationLimitsLocked(int replacing, absl::Time now,
                                                             bool take_token) {
  if (registered - replacing >= options.max_registered_workers) {
    return absl::ResourceExhaustedError(
        absl::StrCat("registration refused: ", registered, " registered workers is the limit (",
                     options.max_registered_workers, ", --max-registered-workers)"));
  }
  if (!take_token) return absl::OkStatus();
  const double burst = options.registration_burst;
  if (registration_refill == absl::InfinitePast()) {
    registration_tokens = burst;
  } else {
    registration_tokens =
        std::min(burst, registration_tokens + absl::ToDoubleSeconds(now - registration_refill) *
                                                  options.registration_rate);
  }
  registration_refill = now;
  if (registration_tokens < 1) {
    return absl::ResourceExhaustedError(
        absl::StrCat("registration refused: more than ", options.registration_rate,
                     " new registrations per second (bursts of ", options.registration_burst,
                     "; --registration-rate, --registration-burst); retry later"));
  }
  registration_tokens -= 1;
  return absl::OkStatus();
}

absl::StatusOr<v1::WorkerInfo> WorkerPool::Impl::Register(const std::string& address,
                                                          const std::string& id,
                                                          const std::string& incarnation) {
  RETURN_IF_ERROR(CheckAddress(address));
  RETURN_IF_ERROR(ValidateIncarnation(incarnation));
  auto registered_count = [](const RegistrationPlan& plan) {
    return static_cast<int>(std::count_if(plan.replace.begin(), plan.replace.end(), [](auto& r) {
      return r.first->source == v1::WorkerInfo::SOURCE_REGISTERED;
    }));
  };
  {
    absl::MutexLock lock(&mu);
    if (stopping) return absl::UnavailableError("the worker pool is shutting down");
    RegistrationPlan plan = PlanRegistrationLocked(address, id, incarnation, absl::Now());
    if (plan.settled.has_value()) return *std::move(plan.settled);
    // Limits before any work for it (the id probe, a channel).
    RETURN_IF_ERROR(CheckRegistrationLimitsLocked(registered_count(plan), absl::Now(), true));
  }
  std::shared_ptr<grpc::Channel> channel = options.make_channel(address);
  const std::string worker_id = id.empty() ? ProbeId(address, channel) : id;
  Cancels cancels;
  absl::Cleanup run_cancels = [&cancels] { cancels.Run(); };
  absl::MutexLock lock(&mu);
  if (stopping) return absl::UnavailableError("the worker pool is shutting down");
  // Again: the id may be new, and another registration may have run meanwhile.
  RegistrationPlan plan = PlanRegistrationLocked(address, worker_id, incarnation, absl::Now());
  if (plan.settled.has_value()) return *std::move(plan.settled);
  RETURN_IF_ERROR(CheckRegistrationLimitsLocked(registered_count(plan), absl::Now(), false));
  for (auto& [e, why] : plan.replace) RemoveLocked(e, why, &cancels);
  return InsertLocked(address, v1::WorkerInfo::SOURCE_REGISTERED, worker_id, std::move(channel),
                      incarnation);
}

absl::StatusOr<v1::WorkerInfo> WorkerPool::Register(const std::string& address,
                                                    const std::string& id,
                                                    const std::string& incarnation) {
  return impl_->Register(address, id, incarnation);
}

bool WorkerPool::Heartbeat(absl::string_view id, absl::string_view incarnation) {
  absl::ReaderMutexLock lock(&impl_->mu);
  auto it = impl_->by_id.find(id);
  if (it == impl_->by_id.end()) return false;
  WorkerRecord& e = *it->second;
  if (e.source != v1::WorkerInfo::SOURCE_REGISTERED) return true;
  absl::MutexLock elock(&e.mu);
  // A stale incarnation (the id was taken over, or re-registered by a new
  // process) neither keeps nor revives the entry.
  if (e.incarnation != incarnation) return false;
  e.last_heartbeat = absl::Now();
  return true;
}

}  // namespace tessera::router
