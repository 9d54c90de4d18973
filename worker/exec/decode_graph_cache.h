// The decode CUDA graphs a CudaModelExecutor has captured, by shape
// (DecodeGraphKey: batch bucket x context bucket), at most `capacity` of
// them. Graphs are captured lazily, on a shape's first step, so the set
// follows the traffic; when it is full the least recently replayed graph
// goes.
//
// A graph holds the device addresses it captured: the model's activation
// buffers and the ops' scratch. Each entry records their generations
// (LlamaForCausalLM::activations_generation, ops::ScratchGeneration) at
// capture, and Find returns only entries captured at the current ones; since
// generations only grow, Put drops every entry captured at other generations
// than the new one's (they can never replay again).
// An entry without a graph marks a shape whose capture failed: it runs
// eagerly until the generations move (then capture is tried again).
// Bookkeeping only (no CUDA call of its own besides destroying graphs), so it
// is tested without a GPU. Not thread-safe: the engine thread's.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "kernels/tensor.h"
#include "worker/device/cuda_graph.h"
#include "worker/exec/cuda_staging.h"

namespace tessera {

class DecodeGraphCache {
 public:
  struct Generations {
    int64_t activations = 0;
    int64_t scratch = 0;
    friend bool operator==(const Generations&, const Generations&) = default;
  };
  struct Entry {
    std::unique_ptr<CudaGraph> graph;  // null: the capture failed; the shape runs eagerly
    Tensor logits;                     // [batch, vocab]: the view the graph writes
    Generations generations;
  };

  // capacity < 1 is taken as 1.
  explicit DecodeGraphCache(int capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // The entry for `key` captured at `now`, marked as the most recently used;
  // null when there is none (never captured, evicted, or stale).
  Entry* Find(const DecodeGraphKey& key, const Generations& now);
  // Stores `entry` for `key`, replacing any older one: first drops the
  // entries captured at other generations than entry.generations, then, if
  // the cache is still full, the least recently used one. Returns the stored
  // entry (valid until the next Put or Clear).
  Entry& Put(const DecodeGraphKey& key, Entry entry);
  // Drops every graph (e.g. the buffers they read were replaced).
  void Clear() { entries_.clear(); }

  int size() const { return static_cast<int>(entries_.size()); }
  int capacity() const { return capacity_; }
  bool Contains(const DecodeGraphKey& key) const { return entries_.count(key) > 0; }
  // Graphs dropped to make room (not counting stale or replaced ones).
  int64_t evictions() const { return evictions_; }

 private:
  struct Slot {
    Entry entry;
    uint64_t last_use = 0;
  };
  int capacity_;
  uint64_t clock_ = 0;
  int64_t evictions_ = 0;
  std::map<DecodeGraphKey, Slot> entries_;
};

}  // namespace tessera
