#include "worker/exec/decode_graph_cache.h"

#include <utility>

namespace tessera {

DecodeGraphCache::Entry* DecodeGraphCache::Find(const DecodeGraphKey& key, const Generations& now) {
  auto it = entries_.find(key);
  if (it == entries_.end() || !(it->second.entry.generations == now)) return nullptr;
  it->second.last_use = ++clock_;
  return &it->second.entry;
}

DecodeGraphCache::Entry& DecodeGraphCache::Put(const DecodeGraphKey& key, Entry entry) {
  entries_.erase(key);
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = it->second.entry.generations == entry.generations ? std::next(it) : entries_.erase(it);
  }
  if (size() >= capacity_) {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.last_use < oldest->second.last_use) oldest = it;
    }
    entries_.erase(oldest);
    ++evictions_;
  }
  Slot& slot = entries_[key];
  slot.entry = std::move(entry);
  slot.last_use = ++clock_;
  return slot.entry;
}

}  // namespace tessera
