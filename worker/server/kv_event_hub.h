// Fans the engine's prefix-cache events (stored / evicted block hashes) out to
// WatchKvEvents watchers. Keeps a mirror of the cached-hash set outside the
// engine, so a new watcher starts from a snapshot (every hash cached now) and
// then gets the changes in order. Each watcher has a bounded queue: a watcher
// that falls too far behind is marked overflowed (its stream ends with
// RESOURCE_EXHAUSTED and it resubscribes for a fresh snapshot), so memory
// stays bounded whatever the watchers do.
//
// Thread-safe: Publish runs on the engine thread, Subscribe/Unsubscribe and
// the watchers' Pop on gRPC threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "tessera/v1/worker.pb.h"
#include "worker/engine/block_manager.h"

namespace tessera {

class KvEventHub {
 public:
  // One watcher's queue of batches: the snapshot first, then one batch per
  // Publish, numbered 0, 1, 2, ... (sequence_number).
  class Watcher {
   public:
    enum class PopResult { kBatch, kEmpty, kOverflowed };
    // Takes the next batch into `out` (kBatch), or says there is none yet
    // (kEmpty) or that the watcher fell behind and must resubscribe
    // (kOverflowed; every later call says so too).
    PopResult Pop(v1::KvEventBatch* out);

   private:
    friend class KvEventHub;
    Watcher(std::function<void()> notify, size_t max_queued)
        : notify_(std::move(notify)), max_queued_(max_queued) {}
    // False when the queue is full (the watcher is then overflowed).
    bool Push(v1::KvEventBatch batch);

    const std::function<void()> notify_;
    const size_t max_queued_;
    absl::Mutex mu_;
    std::deque<v1::KvEventBatch> queue_ ABSL_GUARDED_BY(mu_);
    bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
    uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  };

  // `max_queued_batches`: batches a watcher may have pending before it is
  // overflowed (>= 1).
  explicit KvEventHub(int block_size, size_t max_queued_batches = 1024);

  // Applies `events` (in order) to the mirror and queues them, as one batch,
  // to every watcher, whose `notify` is then called (with the hub's lock
  // held: notify must not call back into the hub).
  void Publish(std::span<const KvEvent> events);

  // A new watcher whose first batch is the snapshot. `notify` is called each
  // time a batch (or the overflow) becomes available to Pop, until
  // Unsubscribe returns; it must be cheap and not block.
  std::shared_ptr<Watcher> Subscribe(std::function<void()> notify);
  // After it returns, `watcher`'s notify is never called again.
  void Unsubscribe(const std::shared_ptr<Watcher>& watcher);

  size_t num_cached() const;
  size_t num_watchers() const;
  int block_size() const { return block_size_; }

 private:
  const int block_size_;
  const size_t max_queued_;
  mutable absl::Mutex mu_;
  absl::flat_hash_set<uint64_t> cached_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera
