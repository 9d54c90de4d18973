#include "router/fair_queue.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::router {
namespace {

using ::testing::ElementsAre;
using Ticket = FairQueue::Ticket;

// Drives a FairQueue: pushes name tickets, grants, remembers whose ticket is whose.
class Driver {
 public:
  explicit Driver(FairQueue::Options o) : q(o) {}

  Ticket Push(const std::string& tenant, double weight = 1.0) {
    const Ticket t = next_++;
    owner_[t] = tenant;
    q.Push(t, tenant, weight);
    return t;
  }
  // Grants until the queue gives nothing; returns the tenants in grant order.
  std::vector<std::string> GrantAll() {
    std::vector<std::string> out;
    while (std::optional<Ticket> t = q.Grant()) out.push_back(owner_.at(*t));
    return out;
  }
  std::optional<std::string> GrantOne() {
    std::optional<Ticket> t = q.Grant();
    if (!t) return std::nullopt;
    return owner_.at(*t);
  }
  std::string Owner(Ticket t) const { return owner_.at(t); }

  FairQueue q;

 private:
  Ticket next_ = 1;
  std::map<Ticket, std::string> owner_;
};

TEST(FairQueueTest, OneTenantIsFifoAndUsesEverySlot) {
  Driver d({.max_concurrent = 3});
  std::vector<Ticket> tickets;
  for (int i = 0; i < 5; ++i) tickets.push_back(d.Push("a"));
  std::vector<Ticket> granted;
  while (std::optional<Ticket> t = d.q.Grant()) granted.push_back(*t);
  // Work-conserving: a lone tenant takes all three slots, oldest first.
  EXPECT_THAT(granted, ElementsAre(tickets[0], tickets[1], tickets[2]));
  EXPECT_EQ(d.q.running(), 3);
  EXPECT_EQ(d.q.queued(), 2);
  d.q.Release("a");
  EXPECT_EQ(d.q.Grant(), tickets[3]);
  EXPECT_EQ(d.q.Grant(), std::nullopt);
}

TEST(FairQueueTest, EqualWeightsAlternateWhateverTheArrivalOrder) {
  Driver d({.max_concurrent = 1});
  // The flood arrives first with 6 requests, then the other tenant with 3.
  for (int i = 0; i < 6; ++i) d.Push("flood");
  for (int i = 0; i < 3; ++i) d.Push("short");
  std::vector<std::string> order;
  order.push_back(*d.GrantOne());
  for (int i = 0; i < 8; ++i) {
    d.q.Release(order.back());
    order.push_back(*d.GrantOne());
  }
  EXPECT_THAT(order, ElementsAre("flood", "short", "flood", "short", "flood", "short", "flood",
                                 "flood", "flood"));
}

TEST(FairQueueTest, GrantsAreProportionalToWeights) {
  Driver d({.max_concurrent = 1});
  for (int i = 0; i < 300; ++i) {
    d.Push("heavy", 3.0);
    d.Push("light", 1.0);
  }
  std::map<std::string, int> count;
  std::string last = *d.GrantOne();
  ++count[last];
  for (int i = 0; i < 199; ++i) {
    d.q.Release(last);
    last = *d.GrantOne();
    ++count[last];
  }
  // 200 grants while both wait: 3:1 within one grant.
  EXPECT_NEAR(count["heavy"], 150, 1);
  EXPECT_NEAR(count["light"], 50, 1);
}

TEST(FairQueueTest, IdleTimeEarnsNoCredit) {
  Driver d({.max_concurrent = 2});
  // "a" holds one slot throughout and is served alone 10 more times; then
  // "b" arrives with 3 requests while "a" has 3 waiting.
  d.Push("a");
  ASSERT_EQ(d.GrantOne(), "a");
  for (int i = 0; i < 10; ++i) {
    d.Push("a");
    ASSERT_EQ(d.GrantOne(), "a");
    d.q.Release("a");
  }
  for (int i = 0; i < 3; ++i) d.Push("a");
  for (int i = 0; i < 3; ++i) d.Push("b");
  std::vector<std::string> order;
  for (int i = 0; i < 6; ++i) {
    order.push_back(*d.GrantOne());
    d.q.Release(order.back());
  }
  // "b" starts at the system's virtual time: it is not owed ten grants, and
  // the two alternate.
  EXPECT_THAT(order, ElementsAre("b", "a", "b", "a", "b", "a"));
}

TEST(FairQueueTest, RemoveWithdrawsAWaiterAndKeepsTheOrder) {
  Driver d({.max_concurrent = 1});
  const Ticket a1 = d.Push("a");
  const Ticket a2 = d.Push("a");
  const Ticket b1 = d.Push("b");
  EXPECT_EQ(d.q.Grant(), a1);
  EXPECT_TRUE(d.q.Remove(b1));
  EXPECT_FALSE(d.q.Remove(b1));
  EXPECT_FALSE(d.q.Remove(a1));  // running, not waiting
  EXPECT_EQ(d.q.queued(), 1);
  d.q.Release("a");
  EXPECT_EQ(d.q.Grant(), a2);
  d.q.Release("a");
  EXPECT_EQ(d.q.active_tenants(), 0);  // idle tenants are forgotten
  EXPECT_EQ(d.q.running(), 0);
}

TEST(FairQueueTest, HeadroomKeepsSlotsForATenantBelowItsShare) {
  Driver d({.max_concurrent = 4, .headroom = 1});
  for (int i = 0; i < 10; ++i) d.Push("flood");
  // Alone, the flood uses max_concurrent - headroom slots.
  EXPECT_THAT(d.GrantAll(), ElementsAre("flood", "flood", "flood"));
  EXPECT_EQ(d.q.running("flood"), 3);
  // A newcomer gets the headroom at once, although the flood waited first.
  d.Push("short");
  EXPECT_THAT(d.GrantAll(), ElementsAre("short"));
  EXPECT_EQ(d.q.running(), 4);
  // When a flood request ends, the headroom is restored, not refilled by
  // the flood (it holds 2 slots; its share of the 3 is 1.5).
  d.q.Release("flood");
  EXPECT_THAT(d.GrantAll(), ElementsAre());
  // With the newcomer gone, the flood is alone again and takes 3 slots.
  d.q.Release("short");
  EXPECT_THAT(d.GrantAll(), ElementsAre("flood"));
  EXPECT_EQ(d.q.running("flood"), 3);
}

TEST(FairQueueTest, WithoutHeadroomANewcomerWaitsForTheNextRelease) {
  Driver d({.max_concurrent = 2});
  for (int i = 0; i < 5; ++i) d.Push("flood");
  EXPECT_THAT(d.GrantAll(), ElementsAre("flood", "flood"));
  d.Push("short");
  EXPECT_THAT(d.GrantAll(), ElementsAre());
  d.q.Release("flood");
  // ... and then goes first, ahead of the flood's older requests.
  EXPECT_THAT(d.GrantAll(), ElementsAre("short"));
}

TEST(FairQueueTest, WeightChangeAppliesToTheTenant) {
  Driver d({.max_concurrent = 1});
  d.Push("a", 1.0);
  d.Push("a", 2.0);  // the latest weight counts
  EXPECT_EQ(d.q.active_tenants(), 1);
  EXPECT_EQ(d.GrantOne(), "a");
  d.q.Release("a");
  EXPECT_EQ(d.GrantOne(), "a");
  d.q.Release("a");
  EXPECT_EQ(d.q.active_tenants(), 0);
}

}  // namespace
}  // namespace tessera::router
