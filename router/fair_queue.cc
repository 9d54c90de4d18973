#include "router/fair_queue.h"

#include <algorithm>

#include "common/check.h"

namespace tessera::router {

FairQueue::FairQueue(Options options) : options_(options) {
  TESSERA_CHECK(options_.max_concurrent >= 1, "max_concurrent must be >= 1, got ",
                options_.max_concurrent);
  TESSERA_CHECK(options_.headroom >= 0 && options_.headroom < options_.max_concurrent,
                "headroom must be in [0, max_concurrent - 1], got ", options_.headroom);
}

FairQueue::Tenant& FairQueue::Get(const std::string& name, double weight) {
  TESSERA_CHECK(weight > 0, "tenant ", name, ": weight must be > 0, got ", weight);
  auto [it, inserted] = tenants_.try_emplace(name);
  Tenant& t = it->second;
  if (inserted) {
    t.tag = vtime_;  // idle -> active: no credit for the idle time
  } else {
    active_weight_ -= t.weight;
  }
  t.weight = weight;
  active_weight_ += weight;
  return t;
}

void FairQueue::Forget(const std::string& name) {
  auto it = tenants_.find(name);
  if (it == tenants_.end()) return;
  const Tenant& t = it->second;
  if (t.running > 0 || !t.waiting.empty()) return;
  const double weight = t.weight;
  tenants_.erase(it);  // active -> idle
  active_weight_ = tenants_.empty() ? 0 : active_weight_ - weight;
}

void FairQueue::Unlink(const std::string& name, const Tenant& t) {
  if (!t.waiting.empty()) order_.erase(Key{t.tag, *t.waiting.begin(), name});
}

void FairQueue::Link(const std::string& name, const Tenant& t) {
  order_.insert(Key{t.tag, *t.waiting.begin(), name});
}

void FairQueue::Push(Ticket ticket, const std::string& tenant, double weight) {
  TESSERA_CHECK(ticket > 0 && !tenant_of_.contains(ticket), "ticket ", ticket, " pushed twice");
  Tenant& t = Get(tenant, weight);
  Unlink(tenant, t);
  // A tenant that starts waiting again starts at the system's virtual time
  // (or later, when it was served ahead of it).
  if (t.waiting.empty()) t.tag = std::max(t.tag, vtime_);
  t.waiting.insert(ticket);
  tenant_of_.emplace(ticket, tenant);
  Link(tenant, t);
}

bool FairQueue::Remove(Ticket ticket) {
  auto it = tenant_of_.find(ticket);
  if (it == tenant_of_.end()) return false;
  const std::string name = std::move(it->second);
  tenant_of_.erase(it);
  Tenant& t = tenants_.at(name);
  Unlink(name, t);
  t.waiting.erase(ticket);  // queued -> gone (cancelled or timed out)
  if (!t.waiting.empty()) Link(name, t);
  Forget(name);
  return true;
}

bool FairQueue::MayTakeHeadroom(const Tenant& t) const {
  const double share =
      static_cast<double>(options_.max_concurrent - options_.headroom) * t.weight / active_weight_;
  return static_cast<double>(t.running) < share;
}

std::optional<FairQueue::Ticket> FairQueue::Grant() {
  const int64_t free = options_.max_concurrent - running_;
  if (free <= 0 || order_.empty()) return std::nullopt;
  const bool headroom_only = free <= options_.headroom;
  for (auto key = order_.begin(); key != order_.end(); ++key) {
    const std::string& name = std::get<2>(*key);
    Tenant& t = tenants_.at(name);
    if (headroom_only && !MayTakeHeadroom(t)) continue;
    const Ticket ticket = *t.waiting.begin();
    const std::string owner = name;  // `key` is erased below
    order_.erase(key);
    t.waiting.erase(t.waiting.begin());
    tenant_of_.erase(ticket);
    // queued -> running; the tenant's next request starts one weighted
    // unit later.
    vtime_ = std::max(vtime_, t.tag);
    t.tag += 1.0 / t.weight;
    ++t.running;
    ++running_;
    if (!t.waiting.empty()) Link(owner, t);
    return ticket;
  }
  return std::nullopt;
}

void FairQueue::Release(const std::string& tenant) {
  auto it = tenants_.find(tenant);
  TESSERA_CHECK(it != tenants_.end() && it->second.running > 0, "Release of tenant ", tenant,
                " that holds no slot");
  --it->second.running;  // running -> free
  --running_;
  Forget(tenant);
}

int64_t FairQueue::running(const std::string& tenant) const {
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? 0 : it->second.running;
}

int64_t FairQueue::queued(const std::string& tenant) const {
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? 0 : static_cast<int64_t>(it->second.waiting.size());
}

}  // namespace tessera::router
