#include "router/admission.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace tessera::router {
namespace {

// Grants decided by Release() run on the releasing thread. A granted request
// may fail at once and call Release() from inside its callback, which grants
// the next waiter, and so on: with a long queue that would recurse once per
// waiter. Instead, deliveries nested in a delivery on the same thread are
// queued here and run, in order, by the outermost one.
struct Delivery {
  AdmissionController::Callback callback;
  absl::Status status;
};
thread_local std::vector<Delivery>* tls_nested_deliveries = nullptr;

void DeliverGrant(AdmissionController::Callback callback, absl::Status status) {
  if (tls_nested_deliveries != nullptr) {
    tls_nested_deliveries->push_back({std::move(callback), std::move(status)});
    return;
  }
  std::vector<Delivery> nested;
  tls_nested_deliveries = &nested;
  callback(std::move(status));
  for (size_t i = 0; i < nested.size(); ++i) {
    Delivery d = std::move(nested[i]);  // `nested` may grow while d runs
    d.callback(std::move(d.status));
  }
  tls_nested_deliveries = nullptr;
}

}  // namespace

AdmissionController::AdmissionController(Options options)
    : options_(options),
      queue_(FairQueue::Options{.max_concurrent = options.max_concurrent,
                                .headroom = options.headroom}) {
  TESSERA_CHECK(options_.max_queued >= 0, "max_queued must be >= 0, got ", options_.max_queued);
  timer_ = std::thread([this] { TimerLoop(); });
}

AdmissionController::~AdmissionController() {
  std::vector<Callback> waiting;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    waiting.reserve(waiters_.size());
    for (auto& [ticket, waiter] : waiters_) waiting.push_back(std::move(waiter.callback));
    waiters_.clear();
  }
  timer_.join();
  for (Callback& callback : waiting) {
    callback(absl::UnavailableError("the router is shutting down"));
  }
}

AdmissionController::Ticket AdmissionController::Acquire(const Requester& requester,
                                                         Callback on_admit) {
  TESSERA_CHECK(on_admit != nullptr, "Acquire needs a callback");
  absl::Status inline_status;
  std::vector<Grant> granted;
  Ticket queued_ticket = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      inline_status = absl::UnavailableError("the router is shutting down");
    } else {
      // -> queued; granted at once when the fair queue has a slot for it.
      const Ticket ticket = next_ticket_++;
      queue_.Push(ticket, requester.tenant, requester.weight);
      waiters_.emplace(ticket, Waiter{std::move(on_admit), absl::Now() + options_.queue_timeout});
      GrantLocked(granted);
      auto it = waiters_.find(ticket);
      if (it == waiters_.end()) {
        // Granted: decided inline, before Acquire returns.
        for (Grant& g : granted) {
          if (g.ticket == ticket) on_admit = std::move(g.callback);
        }
      } else if (queue_.queued() > options_.max_queued) {
        ++rejected_;
        on_admit = std::move(it->second.callback);
        waiters_.erase(it);
        queue_.Remove(ticket);  // queued -> refused
        inline_status = absl::ResourceExhaustedError(
            absl::StrCat("the router is at capacity: ", queue_.running(), " requests running (max ",
                         options_.max_concurrent, "), ", queue_.queued(), " queued (max ",
                         options_.max_queued, ")"));
      } else {
        queued_ticket = ticket;  // the timer thread watches the oldest deadline
      }
    }
  }
  for (Grant& g : granted) {
    if (g.callback != nullptr) DeliverGrant(std::move(g.callback), absl::OkStatus());
  }
  if (on_admit != nullptr) on_admit(std::move(inline_status));
  return queued_ticket;
}

void AdmissionController::GrantLocked(std::vector<Grant>& granted) {
  while (std::optional<Ticket> ticket = queue_.Grant()) {
    auto it = waiters_.find(*ticket);
    TESSERA_CHECK(it != waiters_.end(), "granted ticket ", *ticket, " is not waiting");
    granted.push_back(Grant{*ticket, std::move(it->second.callback)});
    waiters_.erase(it);  // queued -> running
  }
}

void AdmissionController::Cancel(Ticket ticket) {
  Callback callback;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiters_.find(ticket);
    if (it == waiters_.end()) return;  // already decided (or never queued)
    callback = std::move(it->second.callback);
    waiters_.erase(it);  // queued -> cancelled
    queue_.Remove(ticket);
  }
  callback(absl::CancelledError("cancelled while waiting for admission"));
}

void AdmissionController::Release(const std::string& tenant) {
  std::vector<Grant> granted;
  {
    absl::MutexLock lock(&mu_);
    TESSERA_CHECK(queue_.running(tenant) > 0, "Release without a granted slot (tenant ", tenant,
                  ")");
    // running -> free; the slot passes to the next waiter in fair order.
    queue_.Release(tenant);
    GrantLocked(granted);
  }
  for (Grant& g : granted) DeliverGrant(std::move(g.callback), absl::OkStatus());
}

void AdmissionController::TimerLoop() {
  const auto has_waiters_or_stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !waiters_.empty();
  };
  std::vector<Callback> expired;
  mu_.Lock();
  while (!stopping_) {
    if (waiters_.empty()) {
      mu_.Await(absl::Condition(&has_waiters_or_stopping));
      continue;
    }
    // Tickets are handed out in arrival order with the same timeout, so the
    // expired waiters are a prefix of the map.
    const absl::Time now = absl::Now();
    while (!waiters_.empty() && waiters_.begin()->second.deadline <= now) {
      expired.push_back(std::move(waiters_.begin()->second.callback));
      queue_.Remove(waiters_.begin()->first);
      waiters_.erase(waiters_.begin());  // queued -> timed out
      ++rejected_;
    }
    if (!expired.empty()) {
      mu_.Unlock();
      for (Callback& callback : expired) {
        callback(absl::DeadlineExceededError(absl::StrCat(
            "no free slot within the queue timeout (", absl::FormatDuration(options_.queue_timeout),
            ", max ", options_.max_concurrent, " concurrent requests)")));
      }
      expired.clear();
      mu_.Lock();
      continue;
    }
    // Sleep until the oldest waiter's deadline, or until it leaves the queue
    // (granted or cancelled: the next one's deadline is later), or shutdown.
    const Ticket oldest = waiters_.begin()->first;
    const absl::Time deadline = waiters_.begin()->second.deadline;
    const auto oldest_left_or_stopping = [this, oldest]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || waiters_.empty() || waiters_.begin()->first != oldest;
    };
    mu_.AwaitWithDeadline(absl::Condition(&oldest_left_or_stopping), deadline);
  }
  mu_.Unlock();
}

int64_t AdmissionController::running() const {
  absl::MutexLock lock(&mu_);
  return queue_.running();
}

int64_t AdmissionController::running(const std::string& tenant) const {
  absl::MutexLock lock(&mu_);
  return queue_.running(tenant);
}

int64_t AdmissionController::queued(const std::string& tenant) const {
  absl::MutexLock lock(&mu_);
  return queue_.queued(tenant);
}

int64_t AdmissionController::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(waiters_.size());
}

int64_t AdmissionController::rejected() const {
  absl::MutexLock lock(&mu_);
  return rejected_;
}

}  // namespace tessera::router
