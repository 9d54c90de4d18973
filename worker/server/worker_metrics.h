// The worker's metrics: vLLM's (`vllm:...`, with `model_name` and `engine="0"` labels and
// vLLM's buckets, so vLLM dashboards work unchanged) and Tessera's own (`tessera_...`), in a
// metrics::Registry that the leader's /metrics endpoint exposes.
//
// The engine thread records: the EngineLoop calls On*() from its loop (per step, per output,
// per finished choice) and Publish() with the scheduler's state after every loop iteration.
// Every method is lock-free (relaxed atomics through child references looked up once here).
//
// Counting follows vLLM's engine: each choice of an n > 1 request counts as a request
// (request_success, e2e, queue time, token histograms), as vLLM's child requests do.
// finished_reason takes vLLM's values: "stop" (a stop string, a stop token or EOS), "length",
// "abort", "error".
//
// Thread-safety: the On*() and Publish() methods are for one thread (the engine thread);
// scraping the registry is safe from any thread at any time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/metrics/metrics.h"
#include "worker/engine/sequence.h"

namespace tessera {

struct WorkerMetricsOptions {
  std::string model_name;  // the served model name: the `model_name` label
  int max_model_len = 0;   // the token histograms' largest bucket (vLLM's 1-2-5 up to it)
  int tp_size = 1;         // ranks of the replica (tessera_rank_healthy{rank})
};

// What the loop publishes after each iteration (scheduler and block manager state).
struct WorkerStateSample {
  int running = 0;
  int waiting = 0;  // the scheduler's waiting queue + the loop's intake
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_free = 0;          // on the free list
  int64_t kv_blocks_cached = 0;        // unreferenced, hash kept (evictable prefix-cache blocks)
  int64_t kv_blocks_used = 0;          // referenced by a sequence
  int64_t prefix_cache_queries = 0;    // cumulative, tokens
  int64_t prefix_cache_hits = 0;       // cumulative, tokens
  int64_t num_preemptions = 0;         // cumulative
  double tp_collective_seconds = 0.0;  // cumulative host time in the TP collectives
  bool healthy = true;                 // false once a step failed (a rank died or hung)
};

class WorkerMetrics {
 public:
  // Registers the families on `registry` (which must outlive this); their names must not be
  // in it yet.
  WorkerMetrics(metrics::Registry& registry, const WorkerMetricsOptions& options);
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  // One engine step that ran `seqs` sequences and `tokens` scheduled tokens in `seconds`.
  void OnStep(double seconds, int seqs, int tokens);
  // A request's first token: its time to first token and its prompt length.
  void OnFirstToken(double ttft_seconds, int prompt_tokens);
  // Tokens produced for one choice; `inter_token_seconds` < 0 for the choice's first.
  void OnTokens(int count, double inter_token_seconds);
  // A choice ended (its final output).
  void OnFinished(FinishReason reason, double e2e_seconds, double queue_seconds, int prompt_tokens,
                  int generation_tokens);
  // The scheduler's state; cumulative values are turned into counter increments.
  void Publish(const WorkerStateSample& sample);

  metrics::Registry& registry() { return registry_; }

 private:
  metrics::Registry& registry_;
  // Children looked up once (the registry owns them). vLLM's:
  metrics::Gauge* running_;
  metrics::Gauge* waiting_;
  metrics::Gauge* kv_usage_;
  metrics::Counter* prefix_queries_;
  metrics::Counter* prefix_hits_;
  metrics::Counter* preemptions_;
  metrics::Counter* prompt_tokens_;
  metrics::Counter* generation_tokens_;
  metrics::Counter* success_stop_;
  metrics::Counter* success_length_;
  metrics::Counter* success_abort_;
  metrics::Counter* success_error_;
  metrics::Histogram* ttft_;
  metrics::Histogram* itl_;
  metrics::Histogram* e2e_;
  metrics::Histogram* queue_;
  metrics::Histogram* prompt_hist_;
  metrics::Histogram* generation_hist_;
  metrics::Histogram* iteration_tokens_;
  // Tessera's.
  metrics::Histogram* step_seconds_;
  metrics::Histogram* step_seqs_;
  metrics::Counter* collective_seconds_;
  metrics::Gauge* kv_free_;
  metrics::Gauge* kv_cached_;
  metrics::Gauge* kv_used_;
  metrics::Gauge* kv_total_;
  std::vector<metrics::Gauge*> rank_healthy_;  // by rank
  const int tp_size_;
  // The cumulative values of the last Publish().
  WorkerStateSample last_;
};

}  // namespace tessera
