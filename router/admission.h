// Admission control of the router: at most `max_concurrent` requests run,
// at most `max_queued` wait for a slot, each for at most `queue_timeout`.
// Waiting requests get slots weighted-fair across tenants and FIFO within a
// tenant (router/fair_queue.h, with its optional headroom); a request without
// a tenant belongs to the default tenant, so with one tenant the queue is
// FIFO. Non-blocking (for gRPC callback reactors): Acquire takes a
// callback that is called exactly once with the outcome:
//   OK                  a slot is granted; the caller must Release() it later
//   RESOURCE_EXHAUSTED  the queue is full (called inline, before Acquire returns)
//   DEADLINE_EXCEEDED   the request waited queue_timeout without a slot
//   CANCELLED           Cancel(ticket) was called while it waited
// Callbacks run on the thread that decides them (Acquire's caller, a
// Release() caller, a Cancel() caller, or the controller's timer thread),
// never with the controller's lock held; they must not block. A Release()
// made inside a grant that Release() delivered returns before the grant it
// decides runs; that one runs on the same thread right after the outer
// callback returns (so a queue that drains through callbacks never nests).
// Memory is bounded by max_queued. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "router/fair_queue.h"

namespace tessera::router {

class AdmissionController {
 public:
  struct Options {
    int64_t max_concurrent = 1024;  // >= 1
    int64_t max_queued = 4096;      // >= 0
    absl::Duration queue_timeout = absl::Seconds(30);
    // Slots kept for tenants below their weighted share (FairQueue::Options);
    // in [0, max_concurrent - 1].
    int64_t headroom = 0;
  };
  // Who asks for a slot: the tenant's name and weight (> 0).
  struct Requester {
    std::string tenant = "default";
    double weight = 1.0;
  };
  using Ticket = uint64_t;  // 0 = no ticket (decided inline)
  using Callback = std::function<void(absl::Status)>;

  explicit AdmissionController(Options options);
  ~AdmissionController();  // fails every waiter with UNAVAILABLE, joins the timer
  AdmissionController(const AdmissionController&) = delete;
  AdmissionController& operator=(const AdmissionController&) = delete;

  // See the class comment. Returns the ticket of a queued request (for
  // Cancel), or 0 when the callback was already called.
  Ticket Acquire(const Requester& requester, Callback on_admit);
  Ticket Acquire(Callback on_admit) { return Acquire(Requester(), std::move(on_admit)); }
  // Withdraws a waiting request (its callback gets CANCELLED); no effect when
  // it was already decided.
  void Cancel(Ticket ticket);
  // Returns a slot granted to `tenant`; the next waiter in fair order (if
  // any) gets it.
  void Release(const std::string& tenant);
  void Release() { Release(Requester().tenant); }

  int64_t running() const;
  int64_t queued() const;
  int64_t rejected() const;  // RESOURCE_EXHAUSTED + DEADLINE_EXCEEDED so far
  // One tenant's requests holding a slot / waiting.
  int64_t running(const std::string& tenant) const;
  int64_t queued(const std::string& tenant) const;

 private:
  struct Waiter {
    Callback callback;
    absl::Time deadline;
  };
  struct Grant {
    Ticket ticket;
    Callback callback;
  };
  void TimerLoop();
  // Grants every slot the fair queue can give now; their callbacks go to
  // `granted` (to be run after unlocking).
  void GrantLocked(std::vector<Grant>& granted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  FairQueue queue_ ABSL_GUARDED_BY(mu_);  // the order of the waiters, the slots per tenant
  int64_t rejected_ ABSL_GUARDED_BY(mu_) = 0;
  Ticket next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  // Tickets increase, so the map's order is arrival order (and deadline order).
  absl::btree_map<Ticket, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;
};

}  // namespace tessera::router
