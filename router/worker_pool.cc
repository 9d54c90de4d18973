// WorkerPool: membership (this file) on top of per-worker
// monitoring (worker_monitor.cc: health/load polls and the KV-event watch).
//
// Threads: one TaskScheduler thread starts the polls and watch reconnects;
// every RPC is asynchronous (gRPC callback API), so the pool has no thread per
// worker and every wait is a cancellable RPC. Locks, always taken in this
// order: Impl::mu (membership, cluster facts) -> Entry::mu (one worker's
// state) -> the PrefixIndex's lock. RPCs are started and cancelled with no
// lock held.
// Lease is in lease.cc, Place/RecordOutcome in worker_placement.cc, the
// read-only views in worker_pool_views.cc.
#include "router/worker_pool.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "common/api/cluster_channel.h"
#include "common/api/wire_names.h"
#include "common/check.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "router/worker_pool_impl.h"

namespace tessera::router {
namespace {

absl::Status ValidateAddress(const std::string& address) {
  absl::string_view host, port;
  const absl::string_view a(address);
  if (!a.empty() && a.front() == '[') {  // [v6]:port
    const size_t close = a.find("]:");
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("worker address '", address, "' is not host:port ([v6addr]:port)"));
    }
    host = a.substr(1, close - 1);
    port = a.substr(close + 2);
  } else {
    const size_t colon = a.rfind(':');
    if (colon == absl::string_view::npos ||
        a.substr(0, colon).find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("worker address '", address, "' is not host:port (IPv6: [addr]:port)"));
    }
    host = a.substr(0, colon);
    port = a.substr(colon + 1);
  }
  int p = 0;
  if (host.empty() || !absl::SimpleAtoi(port, &p) || p < 1 || p > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker address '", address, "' is not host:port with a port in 1..65535"));
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> DefaultChannel(const std::string& address,
                                              const api::ClusterCredentials& cluster) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(-1);
  return api::CreateClusterChannel(address, cluster, args);
}

}  // namespace

// ---- Impl: membership ------------------------------------------------------

WorkerPool::Impl::Impl(WorkerPoolOptions o, std::unique_ptr<PlacementPolicy> p)
    : options(std::move(o)), policy(std::move(p)) {
  TESSERA_CHECK(policy != nullptr, "WorkerPool needs a placement policy");
  TESSERA_CHECK(options.health_interval > absl::ZeroDuration(), "health_interval must be > 0");
  TESSERA_CHECK(options.health_timeout > absl::ZeroDuration(), "health_timeout must be > 0");
  TESSERA_CHECK(options.unhealthy_threshold >= 1, "unhealthy_threshold must be >= 1");
  TESSERA_CHECK(options.healthy_threshold >= 1, "healthy_threshold must be >= 1");
  TESSERA_CHECK(options.watch_backoff_initial > absl::ZeroDuration() &&
                    options.watch_backoff_max >= options.watch_backoff_initial,
                "need 0 < watch_backoff_initial <= watch_backoff_max");
  TESSERA_CHECK(options.max_registered_workers >= 0 && options.registration_rate > 0 &&
                    options.registration_burst >= 1,
                "need max_registered_workers >= 0, registration_rate > 0, registration_burst >= 1");
  const absl::Status pin = options.cluster_params.Validate();
  TESSERA_CHECK(pin.ok(), pin.ToString());
  if (!options.make_channel) {
    options.make_channel = [cluster = options.cluster](const std::string& address) {
      return DefaultChannel(address, cluster);
    };
  }
}

void WorkerPool::Impl::Shutdown() {
  std::vector<EntryPtr> all;  // released last, on this thread (see Op)
  {
    Cancels cancels;
    {
      absl::MutexLock lock(&mu);
      stopping = true;
      for (const auto& [id, e] : by_id) all.push_back(e);
      for (const EntryPtr& e : all) RemoveLocked(e, "the pool is shutting down", &cancels);
    }
    cancels.Run();
  }  // a cancelled watch stream goes (with its Op) once its call is over
  scheduler.Stop();
  {
    absl::MutexLock lock(&ops_mu);
    ops_mu.Await(absl::Condition(
        +[](int64_t* n) { return *n == 0; }, &ops));
  }
  absl::MutexLock lock(&mu);
  all.clear();        // each one is in `retired` too (RemoveLocked)
  all.swap(retired);  // released after the lock, on this thread
}

void WorkerPool::Impl::PruneRetired() {
  std::vector<EntryPtr> unused;  // released after the lock, on this (the scheduler's) thread
  absl::MutexLock lock(&mu);
  prune_scheduled = false;
  // use_count() == 1: only `retired` holds it, and nothing can copy it from
  // there but this function.
  for (EntryPtr& e : retired) {
    if (e.use_count() == 1) unused.push_back(std::move(e));
  }
  std::erase(retired, nullptr);
  if (!retired.empty()) SchedulePruneLocked(absl::Now() + options.health_interval);
}

void WorkerPool::Impl::SchedulePruneLocked(absl::Time when) {
  if (prune_scheduled || stopping) return;
  prune_scheduled = true;
  scheduler.Schedule(when, [this] { PruneRetired(); });
}

void WorkerPool::Impl::BeginOp() {
  absl::MutexLock lock(&ops_mu);
  ++ops;
}

void WorkerPool::Impl::EndOp() {
  absl::MutexLock lock(&ops_mu);
  --ops;
}

void WorkerPool::Impl::Cancels::Run() {
  for (const auto& p : polls) p->Cancel();
  for (const auto& w : watches) w->Cancel();
}

void WorkerPool::Impl::RemoveLocked(EntryPtr e, absl::string_view why, Cancels* cancels) {
  by_id.erase(e->id);
  by_address.erase(e->address);
  {
    absl::MutexLock lock(&e->mu);
    e->removed = true;
    if (e->poll != nullptr) cancels->polls.push_back(std::move(e->poll));
    if (e->watch != nullptr) cancels->watches.push_back(std::move(e->watch));
    e->poll = nullptr;
    e->watch = nullptr;
    ++e->watch_epoch;
    // Nothing writes this slot after `removed` is set (writers check it under
    // e->mu), so the slot can be reused at once.
    index.RemoveWorker(e->slot);
  }
  free_slots.push_back(e->slot);
  retired.push_back(e);
  SchedulePruneLocked(absl::Now());
  if (e->source == v1::WorkerInfo::SOURCE_REGISTERED) --registered;
  if (by_id.empty()) {
    vote.Clear();  // a new set of workers may serve another model / block size
  } else {
    vote.Erase(e->slot);
    ElectLocked(absl::StrCat("worker ", e->id, " left"));
  }
  spdlog::info("worker {} ({}) removed: {} ({} request(s) still in flight there)", e->id,
               e->address, why, e->in_flight.load());
}

void WorkerPool::Impl::RemoveIfCurrent(const EntryPtr& e, absl::string_view why) {
  Cancels cancels;
  {
    absl::MutexLock lock(&mu);
    auto it = by_id.find(e->id);
    if (it == by_id.end() || it->second != e) return;
    RemoveLocked(e, why, &cancels);
  }
  cancels.Run();
}

std::optional<absl::Status> WorkerPool::Impl::CheckConflictLocked(const std::string& address,
                                                                  const std::string& id) const {
  if (auto a = by_address.find(address); a != by_address.end()) {
    return absl::AlreadyExistsError(
        absl::StrCat("worker ", a->second->id, " already has address ", address));
  }
  if (auto i = id.empty() ? by_id.end() : by_id.find(id); i != by_id.end()) {
    return absl::AlreadyExistsError(
        absl::StrCat("worker id '", id, "' is already used by ", i->second->address));
  }
  return std::nullopt;
}

void WorkerPool::Impl::ProbeIds(std::vector<Probe>& probes) {
  if (probes.empty()) return;
  absl::BlockingCounter pending(static_cast<int>(probes.size()));
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<v1::Worker::Stub>> stubs;
  const v1::GetLoadRequest request;
  for (Probe& p : probes) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(absl::ToChronoTime(absl::Now() + options.health_timeout));
    stubs.push_back(v1::Worker::NewStub(p.channel));
    stubs.back()->async()->GetLoad(contexts.back().get(), &request, &p.report,
                                   [&p, &pending](grpc::Status s) {
                                     p.status = std::move(s);
                                     pending.DecrementCount();
                                   });
  }
  pending.Wait();
}

std::string WorkerPool::Impl::ProbeId(const std::string& address,
                                      const std::shared_ptr<grpc::Channel>& channel) {
  std::vector<Probe> probe(1);
  probe[0].channel = channel;
  ProbeIds(probe);
  return probe[0].status.ok() && !probe[0].report.worker_id().empty() ? probe[0].report.worker_id()
                                                                      : address;
}

absl::Status WorkerPool::Impl::CheckAddress(const std::string& address) {
  return ValidateAddress(address);
}

absl::StatusOr<v1::WorkerInfo> WorkerPool::Impl::Add(const std::string& address,
                                                     v1::WorkerInfo::Source source,
                                                     const std::string& id) {
  if (source == v1::WorkerInfo::SOURCE_REGISTERED) return Register(address, id, "");
  RETURN_IF_ERROR(ValidateAddress(address));
  {
    absl::ReaderMutexLock lock(&mu);
    if (stopping) return absl::UnavailableError("the worker pool is shutting down");
    if (auto conflict = CheckConflictLocked(address, id)) return *std::move(conflict);
  }
  std::shared_ptr<grpc::Channel> channel = options.make_channel(address);
  // The worker's own id when it answers in time, else its address.
  const std::string worker_id = id.empty() ? ProbeId(address, channel) : id;
  absl::MutexLock lock(&mu);
  if (stopping) return absl::UnavailableError("the worker pool is shutting down");
  // Again: the id may be new, and another Add may have run meanwhile.
  if (auto conflict = CheckConflictLocked(address, worker_id)) return *std::move(conflict);
  return InsertLocked(address, source, worker_id, std::move(channel));
}

v1::WorkerInfo WorkerPool::Impl::InsertLocked(const std::string& address,
                                              v1::WorkerInfo::Source source, const std::string& id,
                                              std::shared_ptr<grpc::Channel> channel,
                                              const std::string& incarnation) {
  WorkerSlot slot;
  if (!free_slots.empty()) {
    slot = free_slots.back();
    free_slots.pop_back();
  } else {
    slot = next_slot++;
  }
  const absl::Time now = absl::Now();
  auto e = std::make_shared<WorkerRecord>(id, address, source, slot, std::move(channel),
                                          options.breaker);
  v1::WorkerInfo info;
  {
    absl::MutexLock lock(&e->mu);
    e->last_heartbeat = now;
    e->incarnation = incarnation;
    e->watch_backoff = options.watch_backoff_initial;
    info = InfoLocked(*e, now);
  }
  by_id[id] = e;
  by_address[address] = e;
  if (source == v1::WorkerInfo::SOURCE_REGISTERED) ++registered;
  scheduler.Schedule(now, [this, e] { Poll(e); });
  spdlog::info("worker {} ({}) added, source {}", id, address, v1::WorkerInfo::Source_Name(source));
  return info;
}

void WorkerPool::Impl::SyncSource(v1::WorkerInfo::Source source,
                                  std::span<const std::string> addresses,
                                  absl::Duration drain_grace) {
  const absl::flat_hash_set<std::string> wanted(addresses.begin(), addresses.end());
  std::vector<Probe> probes;
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu);
    if (stopping) return;
    for (const auto& [id, e] : by_id) {
      if (e->source != source) continue;
      absl::MutexLock elock(&e->mu);
      const bool listed = wanted.contains(e->address);
      if (!listed && !e->leaving) {
        e->leaving = true;
        e->leave_deadline = now + drain_grace;
        spdlog::info("worker {} ({}) is no longer listed: draining, removed once idle or in {}",
                     e->id, e->address, absl::FormatDuration(drain_grace));
      } else if (listed && e->leaving) {
        e->leaving = false;
        spdlog::info("worker {} ({}) is listed again: back in rotation", e->id, e->address);
      }
    }
    absl::flat_hash_set<std::string> seen;
    for (const std::string& address : addresses) {
      if (by_address.contains(address) || !seen.insert(address).second) continue;
      if (absl::Status s = ValidateAddress(address); !s.ok()) {
        spdlog::warn("{}", s.message());
        continue;
      }
      probes.emplace_back();
      probes.back().address = address;
    }
  }
  for (Probe& p : probes) p.channel = options.make_channel(p.address);
  ProbeIds(probes);  // in parallel: one slow address does not hold up the others
  for (Probe& p : probes) {
    const std::string id =
        p.status.ok() && !p.report.worker_id().empty() ? p.report.worker_id() : p.address;
    absl::MutexLock lock(&mu);
    if (stopping) return;
    if (auto conflict = CheckConflictLocked(p.address, id)) {
      spdlog::warn("not adding {}: {}", p.address, conflict->message());
      continue;
    }
    InsertLocked(p.address, source, id, std::move(p.channel));
  }
}

// ---- WorkerPool ------------------------------------------------------------

WorkerPool::WorkerPool(WorkerPoolOptions options, std::unique_ptr<PlacementPolicy> policy)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(policy))) {}

WorkerPool::~WorkerPool() { impl_->Shutdown(); }

absl::StatusOr<v1::WorkerInfo> WorkerPool::Add(const std::string& address,
                                               v1::WorkerInfo::Source source,
                                               const std::string& id) {
  return impl_->Add(address, source, id);
}

absl::Status WorkerPool::Remove(absl::string_view id) {
  Impl::Cancels cancels;
  {
    absl::MutexLock lock(&impl_->mu);
    Impl::EntryPtr e = impl_->FindLocked(id);
    if (e == nullptr) return absl::NotFoundError(absl::StrCat("no worker with id '", id, "'"));
    impl_->RemoveLocked(std::move(e), "removed by request", &cancels);
  }
  cancels.Run();
  return absl::OkStatus();
}

absl::StatusOr<v1::WorkerInfo> WorkerPool::SetDraining(absl::string_view id, bool draining) {
  absl::MutexLock lock(&impl_->mu);
  Impl::EntryPtr found = impl_->FindLocked(id);
  if (found == nullptr) return absl::NotFoundError(absl::StrCat("no worker with id '", id, "'"));
  WorkerRecord& e = *found;
  absl::MutexLock elock(&e.mu);
  if (e.admin_draining != draining) {
    spdlog::info("worker {} ({}) {}", e.id, e.address, draining ? "drained" : "undrained");
  }
  e.admin_draining = draining;
  return Impl::InfoLocked(e, absl::Now());
}

void WorkerPool::SyncSource(v1::WorkerInfo::Source source, std::span<const std::string> addresses,
                            absl::Duration drain_grace) {
  impl_->SyncSource(source, addresses, drain_grace);
}

}  // namespace tessera::router
