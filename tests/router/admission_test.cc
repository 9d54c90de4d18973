// AdmissionController (router/admission.h) for one tenant: grants up to the
// cap, FIFO waiters, a full queue, the queue timeout, cancellation, the
// destructor, callbacks outside the lock, and a multi-threaded stress run.
// The tests across tenants are in admission_tenants_test.cc (same binary).
#include "router/admission.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/admission_test_util.h"

namespace tessera::router {
namespace {

using ::testing::ElementsAre;
using Options = AdmissionController::Options;
using testing::kWait;
using testing::Outcome;

TEST(AdmissionTest, GrantsUpToMaxConcurrentInline) {
  Outcome a, b, c;  // outlive `ac`: its destructor fails the waiter c
  AdmissionController ac({.max_concurrent = 2, .max_queued = 4});
  EXPECT_EQ(ac.Acquire(a.Callback()), 0u);
  EXPECT_EQ(ac.Acquire(b.Callback()), 0u);
  EXPECT_EQ(a.code(), absl::StatusCode::kOk);
  EXPECT_EQ(b.code(), absl::StatusCode::kOk);
  EXPECT_EQ(ac.running(), 2);
  EXPECT_NE(ac.Acquire(c.Callback()), 0u);  // queued
  EXPECT_FALSE(c.decided());
  EXPECT_EQ(ac.running(), 2);
  EXPECT_EQ(ac.queued(), 1);
  EXPECT_EQ(ac.rejected(), 0);
}

TEST(AdmissionTest, ReleaseGrantsWaitersInFifoOrder) {
  AdmissionController ac({.max_concurrent = 1, .max_queued = 8});
  std::vector<int> order;
  ASSERT_EQ(ac.Acquire([](absl::Status s) { EXPECT_TRUE(s.ok()); }), 0u);
  std::vector<AdmissionController::Ticket> tickets;
  for (int i = 0; i < 4; ++i) {
    tickets.push_back(ac.Acquire([&order, i](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      order.push_back(i);
    }));
  }
  for (size_t i = 1; i < tickets.size(); ++i) EXPECT_GT(tickets[i], tickets[i - 1]);
  EXPECT_EQ(ac.queued(), 4);
  for (int i = 0; i < 4; ++i) {
    ac.Release();  // the callback runs before Release returns, on this thread
    ASSERT_EQ(order.size(), static_cast<size_t>(i + 1));
    EXPECT_EQ(ac.running(), 1);  // the slot passed straight on
  }
  EXPECT_THAT(order, ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(ac.queued(), 0);
  ac.Release();
  EXPECT_EQ(ac.running(), 0);
  // A free slot is granted inline again.
  Outcome again;
  EXPECT_EQ(ac.Acquire(again.Callback()), 0u);
  EXPECT_EQ(again.code(), absl::StatusCode::kOk);
}

TEST(AdmissionTest, ResourceExhaustedWhenTheQueueIsFull) {
  Outcome running, q1, q2, over;  // outlive `ac`: its destructor fails q1 and q2
  AdmissionController ac({.max_concurrent = 1, .max_queued = 2});
  ac.Acquire(running.Callback());
  EXPECT_NE(ac.Acquire(q1.Callback()), 0u);
  EXPECT_NE(ac.Acquire(q2.Callback()), 0u);
  EXPECT_EQ(ac.Acquire(over.Callback()), 0u);  // decided inline
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(over.count(), 1);
  EXPECT_EQ(ac.rejected(), 1);
  EXPECT_EQ(ac.queued(), 2);
  EXPECT_FALSE(q1.decided());
  EXPECT_FALSE(q2.decided());
}

TEST(AdmissionTest, NoQueueRejectsAtOnce) {
  AdmissionController ac({.max_concurrent = 1, .max_queued = 0});
  Outcome first, second;
  ac.Acquire(first.Callback());
  EXPECT_EQ(ac.Acquire(second.Callback()), 0u);
  EXPECT_EQ(second.code(), absl::StatusCode::kResourceExhausted);
}

TEST(AdmissionTest, DeadlineExceededAfterTheQueueTimeout) {
  const absl::Duration timeout = absl::Milliseconds(50);
  AdmissionController ac({.max_concurrent = 1, .max_queued = 4, .queue_timeout = timeout});
  Outcome holder, late1, late2;
  ac.Acquire(holder.Callback());
  const absl::Time queued_at = absl::Now();
  ASSERT_NE(ac.Acquire(late1.Callback()), 0u);
  ASSERT_NE(ac.Acquire(late2.Callback()), 0u);
  ASSERT_TRUE(late1.done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(late2.done.WaitForNotificationWithTimeout(kWait));
  EXPECT_GE(absl::Now() - queued_at, timeout);
  EXPECT_EQ(late1.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(late2.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ac.rejected(), 2);
  EXPECT_EQ(ac.queued(), 0);
  EXPECT_EQ(ac.running(), 1);
  // The slot they waited for is still the holder's; releasing it frees it.
  ac.Release();
  EXPECT_EQ(ac.running(), 0);
  EXPECT_EQ(late1.count(), 1);
  EXPECT_EQ(late2.count(), 1);
}

TEST(AdmissionTest, TimerKeepsWorkingAfterTheQueueEmpties) {
  AdmissionController ac(
      {.max_concurrent = 1, .max_queued = 4, .queue_timeout = absl::Milliseconds(20)});
  ac.Acquire([](absl::Status) {});
  for (int round = 0; round < 3; ++round) {
    Outcome w;
    ASSERT_NE(ac.Acquire(w.Callback()), 0u);
    ASSERT_TRUE(w.done.WaitForNotificationWithTimeout(kWait)) << round;
    EXPECT_EQ(w.code(), absl::StatusCode::kDeadlineExceeded);
  }
  // A waiter that is granted before its deadline does not time out later.
  Outcome granted;
  ASSERT_NE(ac.Acquire(granted.Callback()), 0u);
  ac.Release();
  EXPECT_EQ(granted.code(), absl::StatusCode::kOk);
  EXPECT_EQ(ac.rejected(), 3);
}

TEST(AdmissionTest, CancelWithdrawsAWaiter) {
  AdmissionController ac({.max_concurrent = 1, .max_queued = 4});
  Outcome holder, a, b;
  ac.Acquire(holder.Callback());
  const AdmissionController::Ticket ta = ac.Acquire(a.Callback());
  const AdmissionController::Ticket tb = ac.Acquire(b.Callback());
  ac.Cancel(ta);
  EXPECT_EQ(a.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(ac.queued(), 1);
  ac.Cancel(ta);  // already decided: nothing
  ac.Cancel(0);   // no ticket: nothing
  ac.Cancel(tb + 100);
  EXPECT_EQ(a.count(), 1);
  ac.Release();  // skips the cancelled one
  EXPECT_EQ(b.code(), absl::StatusCode::kOk);
  ac.Cancel(tb);  // granted already: no effect
  EXPECT_EQ(b.count(), 1);
  EXPECT_EQ(ac.running(), 1);
  EXPECT_EQ(ac.rejected(), 0);  // cancellations are not rejections
}

TEST(AdmissionTest, DestructorFailsWaitersWithUnavailable) {
  Outcome holder, w1, w2;
  {
    AdmissionController ac({.max_concurrent = 1, .max_queued = 4});
    ac.Acquire(holder.Callback());
    ac.Acquire(w1.Callback());
    ac.Acquire(w2.Callback());
  }
  EXPECT_EQ(w1.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(w2.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(w1.count(), 1);
  EXPECT_EQ(holder.count(), 1);  // its OK, nothing more
}

TEST(AdmissionTest, CallbacksRunWithoutTheLock) {
  // Each callback calls back into the controller; under its lock this would
  // deadlock.
  AdmissionController ac(
      {.max_concurrent = 1, .max_queued = 4, .queue_timeout = absl::Milliseconds(20)});
  int64_t seen = -1;
  ac.Acquire([&](absl::Status) { seen = ac.running(); });  // inline grant
  EXPECT_EQ(seen, 1);
  const auto t = ac.Acquire([&](absl::Status) { seen = ac.queued(); });
  ac.Cancel(t);  // cancel callback
  EXPECT_EQ(seen, 0);
  ac.Acquire([&](absl::Status) { seen = ac.running() + 10; });
  ac.Release();  // grant callback
  EXPECT_EQ(seen, 11);
  absl::Notification timed_out;
  std::atomic<int> reacquired{-1};
  ac.Acquire([&](absl::Status s) {  // timer-thread callback
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
    reacquired = ac.Acquire([](absl::Status) {}) != 0 ? 1 : 0;
    timed_out.Notify();
  });
  ASSERT_TRUE(timed_out.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(reacquired.load(), 1);  // queued again behind the running one
}

TEST(AdmissionTest, ReleaseFromGrantCallbacksDoesNotRecurse) {
  // Every granted waiter finishes at once and releases from inside its
  // callback: the whole queue drains on this thread, in order, without
  // nesting one callback per waiter.
  constexpr int kWaiters = 20000;
  AdmissionController ac({.max_concurrent = 1, .max_queued = kWaiters});
  ac.Acquire([](absl::Status) {});
  std::vector<int> order;
  order.reserve(kWaiters);
  int depth = 0;
  int max_depth = 0;
  for (int i = 0; i < kWaiters; ++i) {
    ac.Acquire([&, i](absl::Status s) {
      ASSERT_TRUE(s.ok()) << s;
      max_depth = std::max(max_depth, ++depth);
      order.push_back(i);
      ac.Release();
      --depth;
    });
  }
  ac.Release();
  ASSERT_EQ(order.size(), static_cast<size_t>(kWaiters));
  for (int i = 0; i < kWaiters; ++i) ASSERT_EQ(order[i], i);
  EXPECT_EQ(max_depth, 1);
  EXPECT_EQ(ac.running(), 0);
  EXPECT_EQ(ac.queued(), 0);
}

TEST(AdmissionTest, StressEveryCallbackOnceAndNeverOverCap) {
  constexpr int kCap = 4;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  constexpr int kTotal = kThreads * kPerThread;
  AdmissionController ac(
      {.max_concurrent = kCap, .max_queued = 16, .queue_timeout = absl::Milliseconds(2)});

  std::vector<std::atomic<int>> calls(kTotal);
  std::atomic<int> live{0}, max_live{0}, decided{0};
  std::atomic<int> ok{0}, cancelled{0}, deadline{0}, exhausted{0}, other{0};
  absl::Mutex mu;
  std::deque<int> to_release;  // granted (guarded by mu), released later by another thread

  auto release_one = [&]() -> bool {
    {
      absl::MutexLock lock(&mu);
      if (to_release.empty()) return false;
      to_release.pop_front();
    }
    live.fetch_sub(1);
    ac.Release();
    return true;
  };
  auto callback_for = [&](int id) {
    return [&, id](absl::Status s) {
      calls[id].fetch_add(1);
      switch (s.code()) {
        case absl::StatusCode::kOk: {
          ok.fetch_add(1);
          const int now_live = live.fetch_add(1) + 1;
          int prev = max_live.load();
          while (now_live > prev && !max_live.compare_exchange_weak(prev, now_live)) {
          }
          if (id % 2 == 0) {  // finishes at once, from inside the callback
            live.fetch_sub(1);
            ac.Release();
          } else {
            absl::MutexLock lock(&mu);
            to_release.push_back(id);
          }
          break;
        }
        case absl::StatusCode::kCancelled:
          cancelled.fetch_add(1);
          break;
        case absl::StatusCode::kDeadlineExceeded:
          deadline.fetch_add(1);
          break;
        case absl::StatusCode::kResourceExhausted:
          exhausted.fetch_add(1);
          break;
        default:
          other.fetch_add(1);
      }
      decided.fetch_add(1);
    };
  };

  absl::Notification start;  // all threads start together, to contend
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ASSERT_TRUE(start.WaitForNotificationWithTimeout(kWait));
      std::mt19937 rng(t);
      for (int i = 0; i < kPerThread; ++i) {
        const int id = t * kPerThread + i;
        const AdmissionController::Ticket ticket = ac.Acquire(callback_for(id));
        if (ticket != 0 && rng() % 4 == 0) ac.Cancel(ticket);
        if (rng() % 2 == 0) release_one();
      }
    });
  }
  start.Notify();
  for (std::thread& t : threads) t.join();
  // Drain: release what is still held until every request is decided (the
  // rest time out), bounded.
  const absl::Time give_up = absl::Now() + kWait;
  while (decided.load() < kTotal && absl::Now() < give_up) {
    if (!release_one()) absl::SleepFor(absl::Microseconds(200));  // polling, not sync
  }
  while (release_one()) {
  }
  ASSERT_EQ(decided.load(), kTotal);
  for (int id = 0; id < kTotal; ++id) ASSERT_EQ(calls[id].load(), 1) << "request " << id;
  EXPECT_LE(max_live.load(), kCap);
  EXPECT_GT(max_live.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok + cancelled + deadline + exhausted, kTotal);
  EXPECT_EQ(ac.rejected(), deadline.load() + exhausted.load());
  EXPECT_EQ(ac.running(), 0);
  EXPECT_EQ(ac.queued(), 0);
  EXPECT_EQ(live.load(), 0);
  // Grants and cancellations always happen; how many requests are turned
  // away (queue full, timed out) depends on how the threads interleave.
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(cancelled.load(), 0);
  RecordProperty("granted", ok.load());
  RecordProperty("cancelled", cancelled.load());
  RecordProperty("timed_out", deadline.load());
  RecordProperty("queue_full", exhausted.load());
}

}  // namespace
}  // namespace tessera::router
