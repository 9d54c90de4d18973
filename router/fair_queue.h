// The order in which the router's admission queue hands out its slots:
// weighted-fair across tenants (start-time fair queuing), FIFO within a
// tenant. Pure bookkeeping over tickets: no clock, no threads, no callbacks
// (router/admission.h wraps it with those).
//
// Fairness: each tenant with waiting requests has a virtual start tag; a
// grant goes to the eligible tenant with the smallest tag (ties: the older
// head ticket), and advances that tenant's tag by 1 / weight. A tenant that
// starts waiting again begins at the system's virtual time (the tag of the
// last grant), so idle time earns no credit. While several tenants wait,
// each gets grants in proportion to its weight, whatever their arrival
// order; a lone tenant gets every free slot (work-conserving).
//
// Headroom (Options::headroom = r, 0 by default): the last r free slots go
// only to a tenant holding fewer slots than its weighted share of the other
// (max_concurrent - r) slots among the tenants now active (waiting or
// running). A tenant that floods the router alone thus uses max_concurrent - r
// slots, and a tenant that then arrives gets a slot at once instead of
// waiting for a flood request to end. r = 0 is strictly work-conserving.
//
// Memory: one entry per waiting ticket and per active tenant (a tenant with
// nothing waiting or running is forgotten).
//
// Not thread-safe: the owner serializes calls.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"

namespace tessera::router {

class FairQueue {
 public:
  using Ticket = uint64_t;
  struct Options {
    int64_t max_concurrent = 1;  // slots, >= 1
    int64_t headroom = 0;        // in [0, max_concurrent - 1]
  };

  explicit FairQueue(Options options);

  // `ticket` (unique, > 0) of `tenant` starts waiting. `weight` > 0 is the
  // tenant's weight (the latest push's weight applies to the tenant).
  void Push(Ticket ticket, const std::string& tenant, double weight);
  // Withdraws a waiting ticket (cancelled or timed out): queued -> gone.
  // False when it is not waiting.
  bool Remove(Ticket ticket);
  // The next ticket to admit when a slot is free for it: queued -> running
  // (the slot is counted against its tenant until Release). nullopt when no
  // slot is free, nobody waits, or (headroom) nobody waiting may take the
  // headroom. Call until nullopt after every Push and Release.
  std::optional<Ticket> Grant();
  // A request of `tenant` that was granted ends: running -> free.
  // The tenant must hold a slot (TESSERA_CHECK).
  void Release(const std::string& tenant);

  int64_t running() const { return running_; }
  int64_t queued() const { return static_cast<int64_t>(tenant_of_.size()); }
  int64_t running(const std::string& tenant) const;
  int64_t queued(const std::string& tenant) const;
  // Tenants with something waiting or running.
  int64_t active_tenants() const { return static_cast<int64_t>(tenants_.size()); }

 private:
  struct Tenant {
    double weight = 1.0;
    int64_t running = 0;
    absl::btree_set<Ticket> waiting;  // FIFO: tickets increase
    double tag = 0;                   // start tag of the head (finish tag of the last grant)
  };
  // Backlogged tenants by (tag, head ticket): the grant order.
  using Key = std::tuple<double, Ticket, std::string>;

  Tenant& Get(const std::string& name, double weight);
  void Forget(const std::string& name);                   // when idle
  void Unlink(const std::string& name, const Tenant& t);  // drop from order_
  void Link(const std::string& name, const Tenant& t);    // into order_ (needs waiting)
  bool MayTakeHeadroom(const Tenant& t) const;

  const Options options_;
  int64_t running_ = 0;
  double vtime_ = 0;          // start tag of the last grant
  double active_weight_ = 0;  // sum of the weights in tenants_
  absl::node_hash_map<std::string, Tenant> tenants_;
  absl::flat_hash_map<Ticket, std::string> tenant_of_;  // waiting tickets
  std::set<Key> order_;
};

}  // namespace tessera::router
