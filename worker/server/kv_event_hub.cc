#include "worker/server/kv_event_hub.h"

#include <algorithm>
#include <utility>

namespace tessera {
namespace {

v1::KvEvent::Kind KindOf(KvEvent::Type type) {
  switch (type) {
    case KvEvent::Type::kStored:
      return v1::KvEvent::KIND_STORED;
    case KvEvent::Type::kEvicted:
      return v1::KvEvent::KIND_EVICTED;
  }
  return v1::KvEvent::KIND_UNSPECIFIED;
}

}  // namespace

KvEventHub::Watcher::PopResult KvEventHub::Watcher::Pop(v1::KvEventBatch* out) {
  absl::MutexLock lock(&mu_);
  if (overflowed_) return PopResult::kOverflowed;
  if (queue_.empty()) return PopResult::kEmpty;
  *out = std::move(queue_.front());
  queue_.pop_front();
  out->set_sequence_number(next_sequence_++);
  return PopResult::kBatch;
}

bool KvEventHub::Watcher::Push(v1::KvEventBatch batch) {
  absl::MutexLock lock(&mu_);
  if (overflowed_) return false;
  if (queue_.size() >= max_queued_) {
    overflowed_ = true;
    queue_.clear();  // its memory goes now, not when the stream ends
    return false;
  }
  queue_.push_back(std::move(batch));
  return true;
}

KvEventHub::KvEventHub(int block_size, size_t max_queued_batches)
    : block_size_(block_size), max_queued_(std::max<size_t>(1, max_queued_batches)) {}

void KvEventHub::Publish(std::span<const KvEvent> events) {
  if (events.empty()) return;
  v1::KvEventBatch batch;
  batch.set_block_size(block_size_);
  v1::KvEvent* current = nullptr;
  for (const KvEvent& e : events) {
    const v1::KvEvent::Kind kind = KindOf(e.type);
    if (current == nullptr || current->kind() != kind) {
      current = batch.add_events();
      current->set_kind(kind);
    }
    current->add_block_hashes(e.hash);
  }
  absl::MutexLock lock(&mu_);
  for (const KvEvent& e : events) {
    switch (e.type) {
      case KvEvent::Type::kStored:
        cached_.insert(e.hash);
        break;
      case KvEvent::Type::kEvicted:
        cached_.erase(e.hash);
        break;
    }
  }
  for (const std::shared_ptr<Watcher>& w : watchers_) {
    w->Push(batch);  // an overflow is reported through Pop
    w->notify_();
  }
}

std::shared_ptr<KvEventHub::Watcher> KvEventHub::Subscribe(std::function<void()> notify) {
  std::shared_ptr<Watcher> w(new Watcher(std::move(notify), max_queued_));
  v1::KvEventBatch snapshot;
  snapshot.set_snapshot(true);
  snapshot.set_block_size(block_size_);
  absl::MutexLock lock(&mu_);
  v1::KvEvent* stored = snapshot.add_events();
  stored->set_kind(v1::KvEvent::KIND_STORED);
  stored->mutable_block_hashes()->Reserve(static_cast<int>(cached_.size()));
  for (uint64_t h : cached_) stored->add_block_hashes(h);
  {
    absl::MutexLock wlock(&w->mu_);
    w->queue_.push_back(std::move(snapshot));  // the snapshot never overflows
  }
  watchers_.push_back(w);
  w->notify_();
  return w;
}

void KvEventHub::Unsubscribe(const std::shared_ptr<Watcher>& watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), watcher), watchers_.end());
}

size_t KvEventHub::num_cached() const {
  absl::MutexLock lock(&mu_);
  return cached_.size();
}

size_t KvEventHub::num_watchers() const {
  absl::MutexLock lock(&mu_);
  return watchers_.size();
}

}  // namespace tessera
