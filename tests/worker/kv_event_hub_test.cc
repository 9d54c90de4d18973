// KvEventHub: a new watcher gets a snapshot of the mirror, then the changes in
// order; a watcher that falls behind is overflowed (bounded memory).
#include "worker/server/kv_event_hub.h"

#include <atomic>
#include <set>

#include "gtest/gtest.h"

namespace tessera {
namespace {

KvEvent Stored(uint64_t h) { return KvEvent{KvEvent::Type::kStored, h}; }
KvEvent Evicted(uint64_t h) { return KvEvent{KvEvent::Type::kEvicted, h}; }

std::set<uint64_t> Hashes(const v1::KvEvent& e) {
  return std::set<uint64_t>(e.block_hashes().begin(), e.block_hashes().end());
}

TEST(KvEventHubTest, SnapshotThenOrderedChanges) {
  KvEventHub hub(16);
  std::vector<KvEvent> first = {Stored(1), Stored(2), Stored(3), Evicted(2)};
  hub.Publish(first);
  EXPECT_EQ(hub.num_cached(), 2u);

  std::atomic<int> notified{0};
  auto w = hub.Subscribe([&] { notified++; });
  EXPECT_GE(notified.load(), 1);
  v1::KvEventBatch b;
  ASSERT_EQ(w->Pop(&b), KvEventHub::Watcher::PopResult::kBatch);
  EXPECT_TRUE(b.snapshot());
  EXPECT_EQ(b.sequence_number(), 0u);
  EXPECT_EQ(b.block_size(), 16);
  ASSERT_EQ(b.events_size(), 1);
  EXPECT_EQ(b.events(0).kind(), v1::KvEvent::KIND_STORED);
  EXPECT_EQ(Hashes(b.events(0)), (std::set<uint64_t>{1, 3}));
  EXPECT_EQ(w->Pop(&b), KvEventHub::Watcher::PopResult::kEmpty);

  std::vector<KvEvent> second = {Stored(4), Stored(5), Evicted(1), Stored(6)};
  hub.Publish(second);
  ASSERT_EQ(w->Pop(&b), KvEventHub::Watcher::PopResult::kBatch);
  EXPECT_FALSE(b.snapshot());
  EXPECT_EQ(b.sequence_number(), 1u);
  ASSERT_EQ(b.events_size(), 3);  // runs of one kind, in order
  EXPECT_EQ(b.events(0).kind(), v1::KvEvent::KIND_STORED);
  EXPECT_EQ(
      std::vector<uint64_t>(b.events(0).block_hashes().begin(), b.events(0).block_hashes().end()),
      (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(b.events(1).kind(), v1::KvEvent::KIND_EVICTED);
  EXPECT_EQ(b.events(2).kind(), v1::KvEvent::KIND_STORED);

  // A later watcher's snapshot reflects every change.
  auto w2 = hub.Subscribe([] {});
  ASSERT_EQ(w2->Pop(&b), KvEventHub::Watcher::PopResult::kBatch);
  EXPECT_EQ(Hashes(b.events(0)), (std::set<uint64_t>{3, 4, 5, 6}));
  EXPECT_EQ(hub.num_watchers(), 2u);
  hub.Unsubscribe(w);
  hub.Unsubscribe(w2);
  EXPECT_EQ(hub.num_watchers(), 0u);
}

TEST(KvEventHubTest, SlowWatcherOverflowsAndResubscribes) {
  KvEventHub hub(16, /*max_queued_batches=*/3);
  auto slow = hub.Subscribe([] {});  // snapshot queued (1 of 3)
  for (uint64_t h = 0; h < 10; ++h) {
    std::vector<KvEvent> e = {Stored(h)};
    hub.Publish(e);
  }
  v1::KvEventBatch b;
  EXPECT_EQ(slow->Pop(&b), KvEventHub::Watcher::PopResult::kOverflowed);
  EXPECT_EQ(slow->Pop(&b), KvEventHub::Watcher::PopResult::kOverflowed);
  hub.Unsubscribe(slow);
  auto fresh = hub.Subscribe([] {});
  ASSERT_EQ(fresh->Pop(&b), KvEventHub::Watcher::PopResult::kBatch);
  EXPECT_TRUE(b.snapshot());
  EXPECT_EQ(b.events(0).block_hashes_size(), 10);
}

TEST(KvEventHubTest, NoNotifyAfterUnsubscribe) {
  KvEventHub hub(16);
  std::atomic<int> calls{0};
  auto w = hub.Subscribe([&] { calls++; });
  const int before = calls.load();
  hub.Unsubscribe(w);
  std::vector<KvEvent> e = {Stored(1)};
  hub.Publish(e);
  EXPECT_EQ(calls.load(), before);
}

}  // namespace
}  // namespace tessera
