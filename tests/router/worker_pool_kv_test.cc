// WorkerPool's KV-event feed against in-process fake workers: the index
// follows the watch stream, resyncs after a restart or a sequence gap, and the
// watch can be turned off; the pool releases its channels on its own threads.
#include <pthread.h>

#include <thread>
#include <tuple>
#include <utility>

#include "router/task_scheduler.h"
#include "tests/router/worker_pool_test_util.h"

namespace tessera::router::pool_test {
namespace {

TEST_F(WorkerPoolTest, KvEventsFeedTheIndexAndResyncAfterARestart) {
  FakeWorker& a = Fake("a");
  FakeWorker& b = Fake("b");
  MakePool();
  AddEligible(a);
  AddEligible(b);
  ASSERT_TRUE(Eventually([&] { return a.kv_watchers() == 1 && b.kv_watchers() == 1; }));
  WorkerSlot slot_a, slot_b;
  {
    absl::StatusOr<Lease> la = Place({"b"});
    absl::StatusOr<Lease> lb = Place({"a"});
    ASSERT_TRUE(la.ok() && lb.ok());
    slot_a = la->slot();
    slot_b = lb->slot();
  }
  ASSERT_NE(slot_a, slot_b);
  PrefixIndex& index = pool_->index();

  a.PushKvEvents(Batch(v1::KvEvent::KIND_STORED, {11, 12, 13}));
  ASSERT_TRUE(Eventually([&] { return index.BlockCount(slot_a) == 3; }));
  const std::vector<uint64_t> prompt = {11, 12, 99};
  const std::vector<WorkerSlot> slots = {slot_a, slot_b};
  std::vector<int> matched(2);
  index.MatchPrefix(prompt, slots, std::span<int>(matched));
  EXPECT_THAT(matched, ElementsAre(2, 0));

  a.PushKvEvents(Batch(v1::KvEvent::KIND_EVICTED, {12}));
  ASSERT_TRUE(Eventually([&] { return index.BlockCount(slot_a) == 2; }));

  // Placement sees the matched blocks and picks the holder.
  absl::StatusOr<Lease> l = Place({}, {11, 13});
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->worker_id(), "a");
  const std::vector<Candidate> seen = policy_->last();
  ASSERT_EQ(seen.size(), 2u);
  for (const Candidate& c : seen) EXPECT_EQ(c.matched_blocks, c.slot == slot_a ? 2 : 0);
  l = absl::UnavailableError("released");

  // The worker dies: its entries are dropped at once, and it is ejected.
  a.Stop();
  EXPECT_TRUE(Eventually([&] { return index.BlockCount(slot_a) == 0; }));
  EXPECT_TRUE(Eventually([&] { return StateOf("a") == v1::WorkerInfo::STATE_UNHEALTHY; }));
  // It comes back (same port, same cache): re-admitted, re-watched, resynced.
  ASSERT_TRUE(a.Restart().ok());
  EXPECT_TRUE(pool_->WaitEligible("a", absl::Seconds(10)));
  EXPECT_TRUE(Eventually([&] { return index.BlockCount(slot_a) == 2; }));
  EXPECT_GE(a.watch_calls(), 2);
  a.PushKvEvents(Batch(v1::KvEvent::KIND_STORED, {12}));
  EXPECT_TRUE(Eventually([&] { return index.BlockCount(slot_a) == 3; }));
  EXPECT_EQ(index.BlockCount(slot_b), 0);
}

TEST_F(WorkerPoolTest, SequenceGapDropsEntriesAndResubscribes) {
  FakeWorker& a = Fake("a");
  MakePool();
  AddEligible(a);
  ASSERT_TRUE(Eventually([&] { return a.kv_watchers() == 1; }));
  absl::StatusOr<Lease> l = Place();
  ASSERT_TRUE(l.ok());
  const WorkerSlot slot = l->slot();
  a.PushKvEvents(Batch(v1::KvEvent::KIND_STORED, {1}));
  ASSERT_TRUE(Eventually([&] { return pool_->index().BlockCount(slot) == 1; }));
  const int64_t watches = a.watch_calls();

  a.SkipKvSequenceNumbers(1);  // the next batch arrives as 3 where 2 is due
  a.PushKvEvents(Batch(v1::KvEvent::KIND_STORED, {2}));
  EXPECT_TRUE(Eventually([&] { return a.watch_calls() > watches; }));  // resubscribed
  // The fresh snapshot holds both blocks.
  EXPECT_TRUE(Eventually([&] { return pool_->index().BlockCount(slot) == 2; }));
  EXPECT_EQ(StateOf("a"), v1::WorkerInfo::STATE_HEALTHY);
}

TEST_F(WorkerPoolTest, WatchCanBeTurnedOff) {
  FakeWorker& a = Fake("a");
  WorkerPoolOptions o = FastOptions();
  o.watch_kv_events = false;
  MakePool(o);
  AddEligible(a);
  const int64_t polls = a.get_load_calls();
  EXPECT_TRUE(Eventually([&] { return a.get_load_calls() >= polls + 3; }));
  EXPECT_EQ(a.watch_calls(), 0);
}

// The pool lets go of its workers' channels on its own threads, never on a
// gRPC callback thread: a grpc::Channel destroyed last on a gRPC callback
// thread destroys the completion queue that thread runs (a double free at the
// router's exit, when a worker's watch ended just as the router stopped).
// Even rounds: worker "b" is removed, then "a" stops (its watch and polls end
// on gRPC threads) just before the pool goes; odd rounds: the pool goes as
// soon as both are in rotation, while their watches are starting. "a" is in
// the pool to the end: its channel goes on the thread that destroys the pool.
// "b" goes then or before, on the pool's scheduler thread (PruneRetired).
// What is checked is the pool's own reference (the deleter of the channel it
// was given); the calls' contexts hold the channel too.
TEST_F(WorkerPoolTest, ChannelsAreReleasedOnThePoolsOwnThreads) {
  struct Released {
    absl::Mutex mu;
    // address -> (thread, its name)
    std::vector<std::tuple<std::string, std::thread::id, std::string>> by ABSL_GUARDED_BY(mu);
  };
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    fakes_.clear();
    FakeWorker& a = Fake("a");
    FakeWorker& b = Fake("b");
    auto released = std::make_shared<Released>();
    WorkerPoolOptions o = FastOptions();
    // Each channel the pool gets, with a deleter that records where it ran.
    o.make_channel = [released](const std::string& address) {
      std::shared_ptr<grpc::Channel> channel =
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
      grpc::Channel* raw = channel.get();
      return std::shared_ptr<grpc::Channel>(
          raw, [channel, released, address](grpc::Channel*) mutable {
            char name[16] = {};
            pthread_getname_np(pthread_self(), name, sizeof(name));
            {
              absl::MutexLock lock(&released->mu);
              released->by.emplace_back(address, std::this_thread::get_id(), name);
            }
            channel.reset();
          });
    };
    MakePool(o);
    AddEligible(a);
    AddEligible(b);
    if (round % 2 == 0) {
      ASSERT_TRUE(Eventually([&] { return a.kv_watchers() == 1 && b.kv_watchers() == 1; }));
      ASSERT_TRUE(pool_->Remove("b").ok());
      a.Stop();
    }
    pool_.reset();

    absl::MutexLock lock(&released->mu);
    EXPECT_EQ(released->by.size(), 2u);  // each worker's channel, once, by now
    for (const auto& [address, thread, name] : released->by) {
      if (address == a.address() || round % 2 == 1) {
        EXPECT_EQ(thread, std::this_thread::get_id()) << "the channel to " << address;
      } else {
        EXPECT_TRUE(thread == std::this_thread::get_id() || name == TaskScheduler::kThreadName)
            << "the channel to " << address << " went on thread '" << name << "'";
      }
    }
  }
}

}  // namespace
}  // namespace tessera::router::pool_test
