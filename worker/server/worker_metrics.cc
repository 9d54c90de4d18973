#include "worker/server/worker_metrics.h"

#include <algorithm>
#include <string>
#include <vector>

namespace tessera {

WorkerMetrics::WorkerMetrics(metrics::Registry& r, const WorkerMetricsOptions& o)
    : registry_(r), tp_size_(std::max(1, o.tp_size)) {
  namespace b = metrics::buckets;
  const std::vector<std::string> labels = {"model_name", "engine"};
  const std::vector<std::string> values = {o.model_name, "0"};
  auto gauge = [&](const char* name, const char* help) {
    return &r.AddGauge(name, help, labels).Labels(values);
  };
  auto counter = [&](const char* name, const char* help) {
    return &r.AddCounter(name, help, labels).Labels(values);
  };
  auto histogram = [&](const char* name, const char* help, std::vector<double> bounds) {
    return &r.AddHistogram(name, help, labels, std::move(bounds)).Labels(values);
  };
  const std::vector<double> token_buckets = b::OneTwoFive(std::max(1, o.max_model_len));

  // vLLM's names, help texts and buckets (vllm/v1/metrics/loggers.py).
  running_ = gauge("vllm:num_requests_running", "Number of requests in model execution batches.");
  waiting_ = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.");
  kv_usage_ = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.");
  prefix_queries_ = counter("vllm:prefix_cache_queries_total",
                            "Prefix cache queries, in terms of number of queried tokens.");
  prefix_hits_ = counter("vllm:prefix_cache_hits_total",
                         "Prefix cache hits, in terms of number of cached tokens.");
  preemptions_ =
      counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.");
  prompt_tokens_ = counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.");
  generation_tokens_ =
      counter("vllm:generation_tokens_total", "Number of generation tokens processed.");
  auto& success =
      r.AddCounter("vllm:request_success_total", "Count of successfully processed requests.",
                   {"model_name", "engine", "finished_reason"});
  success_stop_ = &success.Labels({o.model_name, "0", "stop"});
  success_length_ = &success.Labels({o.model_name, "0", "length"});
  success_abort_ = &success.Labels({o.model_name, "0", "abort"});
  success_error_ = &success.Labels({o.model_name, "0", "error"});
  prompt_hist_ =
      histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", token_buckets);
  generation_hist_ = histogram("vllm:request_generation_tokens",
                               "Number of generation tokens processed.", token_buckets);
  iteration_tokens_ =
      histogram("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.",
                b::IterationTokens());
  ttft_ = histogram("vllm:time_to_first_token_seconds",
                    "Histogram of time to first token in seconds.", b::TimeToFirstToken());
  itl_ = histogram("vllm:inter_token_latency_seconds",
                   "Histogram of inter-token latency in seconds.", b::InterTokenLatency());
  e2e_ = histogram("vllm:e2e_request_latency_seconds",
                   "Histogram of e2e request latency in seconds.", b::RequestLatency());
  queue_ = histogram("vllm:request_queue_time_seconds",
                     "Histogram of time spent in WAITING phase for request.", b::RequestLatency());

  // Tessera's own.
  step_seconds_ = &r.AddHistogram("tessera_engine_step_seconds",
                                  "Time of one engine step (schedule, forward on every rank, "
                                  "sample, outputs) in seconds.",
                                  {"model_name"}, b::Exponential(0.0001, 2, 18))
                       .Labels({o.model_name});
  step_seqs_ = &r.AddHistogram("tessera_engine_batch_size", "Sequences run in one engine step.",
                               {"model_name"}, b::Exponential(1, 2, 11))
                    .Labels({o.model_name});
  collective_seconds_ =
      &r.AddCounter("tessera_tp_collective_seconds_total",
                    "Host time the leader spent in tensor-parallel collectives (all-reduce, "
                    "all-gather, step-plan broadcast) in seconds; 0 with one rank.",
                    {"model_name"})
           .Labels({o.model_name});
  auto& blocks = r.AddGauge("tessera_kv_blocks",
                            "KV-cache blocks by state: free (on the free list), cached "
                            "(unreferenced, prefix hash kept, evictable), used (referenced).",
                            {"model_name", "state"});
  kv_free_ = &blocks.Labels({o.model_name, "free"});
  kv_cached_ = &blocks.Labels({o.model_name, "cached"});
  kv_used_ = &blocks.Labels({o.model_name, "used"});
  kv_total_ =
      &r.AddGauge("tessera_kv_blocks_capacity", "KV-cache blocks in the pool.", {"model_name"})
           .Labels({o.model_name});
  auto& healthy = r.AddGauge("tessera_rank_healthy",
                             "1 while the replica's ranks answer the leader's collectives; 0 "
                             "for every rank once a step failed (a rank died or hung).",
                             {"model_name", "rank"});
  for (int rank = 0; rank < tp_size_; ++rank) {
    rank_healthy_.push_back(&healthy.Labels({o.model_name, std::to_string(rank)}));
    rank_healthy_.back()->Set(1);
  }
}

void WorkerMetrics::OnStep(double seconds, int seqs, int tokens) {
  step_seconds_->Observe(seconds);
  step_seqs_->Observe(seqs);
  iteration_tokens_->Observe(tokens);
}

void WorkerMetrics::OnFirstToken(double ttft_seconds, int prompt_tokens) {
  ttft_->Observe(ttft_seconds);
  prompt_tokens_->Inc(prompt_tokens);
}

void WorkerMetrics::OnTokens(int count, double inter_token_seconds) {
  generation_tokens_->Inc(count);
  if (inter_token_seconds >= 0) itl_->Observe(inter_token_seconds);
}

void WorkerMetrics::OnFinished(FinishReason reason, double e2e_seconds, double queue_seconds,
                               int prompt_tokens, int generation_tokens) {
  switch (reason) {
    case FinishReason::kNone:
      return;
    case FinishReason::kStop:
    case FinishReason::kEos:
      success_stop_->Inc();
      break;
    case FinishReason::kLength:
      success_length_->Inc();
      break;
    case FinishReason::kAbort:
      success_abort_->Inc();
      break;
    case FinishReason::kError:
      success_error_->Inc();
      break;
  }
  e2e_->Observe(e2e_seconds);
  queue_->Observe(queue_seconds);
  prompt_hist_->Observe(prompt_tokens);
  generation_hist_->Observe(generation_tokens);
}

void WorkerMetrics::Publish(const WorkerStateSample& s) {
  running_->Set(s.running);
  waiting_->Set(s.waiting);
  kv_usage_->Set(s.kv_blocks_total > 0 ? static_cast<double>(s.kv_blocks_used) /
                                             static_cast<double>(s.kv_blocks_total)
                                       : 0.0);
  kv_free_->Set(static_cast<double>(s.kv_blocks_free));
  kv_cached_->Set(static_cast<double>(s.kv_blocks_cached));
  kv_used_->Set(static_cast<double>(s.kv_blocks_used));
  kv_total_->Set(static_cast<double>(s.kv_blocks_total));
  // Cumulative sources become counter increments (never negative).
  auto delta = [](auto now, auto before) { return now > before ? now - before : 0; };
  prefix_queries_->Inc(
      static_cast<double>(delta(s.prefix_cache_queries, last_.prefix_cache_queries)));
  prefix_hits_->Inc(static_cast<double>(delta(s.prefix_cache_hits, last_.prefix_cache_hits)));
  preemptions_->Inc(static_cast<double>(delta(s.num_preemptions, last_.num_preemptions)));
  collective_seconds_->Inc(delta(s.tp_collective_seconds, last_.tp_collective_seconds));
  if (s.healthy != last_.healthy) {
    for (metrics::Gauge* g : rank_healthy_) g->Set(s.healthy ? 1 : 0);
  }
  last_ = s;
}

}  // namespace tessera
