// A small Prometheus metrics registry: counters, gauges and fixed-bucket histograms, grouped
// in families (one name, help text, type and label names; one child per set of label
// values), plus callback metrics read at scrape time, exposed in the Prometheus text format
// 0.0.4 by `Registry::Expose()`.
//
// Cost model: recording is lock-free. `Counter::Inc`, `Gauge::Set/Add` are one relaxed atomic
// operation; `Histogram::Observe` is a bucket search over the (few) bounds plus three relaxed
// atomic adds. Creating a child (`Family::Labels`) takes the family's mutex and may allocate,
// so a hot path looks its children up once and keeps the references (they stay valid as long
// as the registry lives).
//
// Usage:
//   metrics::Registry registry;
//   auto& tokens = registry.AddCounter("vllm:generation_tokens_total",
//                                      "Number of generation tokens processed.", {"model_name"});
//   metrics::Counter& gen = tokens.Labels({"llama"});   // once
//   gen.Inc(n);                                         // engine thread, every step
//   registry.AddCallback(metrics::MetricType::kGauge, "vllm:num_requests_waiting", "...",
//                        {"model_name"}).Set({"llama"}, [&loop] { return loop.load().waiting; });
//   std::string body = registry.Expose();               // the /metrics handler
//
// Names: metric names match [a-zA-Z_:][a-zA-Z0-9_:]* (colons allowed, as vLLM's
// `vllm:num_requests_running`); label names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with
// "__"; a histogram may not have a label called "le". The name given is the name exposed:
// a counter's name should end in "_total" (nothing is appended). Breaking these rules, adding
// a name twice, or passing the wrong number of label values is a programming error
// (TESSERA_CHECK aborts).
//
// Thread-safety: everything is thread-safe. Values are relaxed atomics: a scrape that runs
// during updates sees each value at some recent point, and a histogram's `_sum` may lag its
// buckets by the observations in flight (its `_count` always equals its `+Inf` bucket).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tessera::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// A monotonically increasing value (requests served, tokens generated).
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;
  // `v` must be >= 0 (TESSERA_CHECK). Integer increments stay exact up to 2^53.
  void Inc(double v = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down (requests running, cache usage).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted in fixed buckets. Bucket i counts values v <= bounds[i] (and above the
// previous bound); values above the last bound, and NaN, count in the implicit +Inf bucket.
class Histogram {
 public:
  // `bounds` strictly increasing and not NaN (TESSERA_CHECK); a trailing +Inf is dropped (the
  // +Inf bucket is always there).
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;        // the finite bounds
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries; the last is +Inf (= count)
    double sum = 0.0;
    uint64_t count = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; +1 for +Inf
  std::atomic<double> sum_{0.0};
};

// vLLM's bucket boundaries (vllm/v1/metrics/loggers.py), so dashboards built for vLLM work.
namespace buckets {
// vllm:time_to_first_token_seconds.
std::vector<double> TimeToFirstToken();
// vllm:inter_token_latency_seconds (and time_per_output_token).
std::vector<double> InterTokenLatency();
// vllm:e2e_request_latency_seconds, request_queue_time_seconds and the other request phases.
std::vector<double> RequestLatency();
// vllm:iteration_tokens_total: 1, 8, 16, 32, ..., 16384.
std::vector<double> IterationTokens();
// vLLM's build_1_2_5_buckets(max): 1, 2, 5, 10, 20, 50, ... up to and including `max_value`
// (token-count histograms use max = max_model_len).
std::vector<double> OneTwoFive(double max_value);
// `count` bounds start, start*factor, start*factor^2, ...
std::vector<double> Exponential(double start, double factor, int count);
}  // namespace buckets

namespace internal {

// What every family has; the registry exposes families through this.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends this family's HELP, TYPE and sample lines.
  void Expose(std::string& out) const;

 protected:
  // `k1="v1",k2="v2"` for these label values (escaped); TESSERA_CHECKs their number.
  std::string RenderLabels(const std::vector<std::string>& values) const;
  // Appends the sample lines only.
  virtual void AppendSamples(std::string& out) const = 0;

 private:
  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

// Sample lines of one child; `labels` is the rendered label set ("" for none).
void AppendSample(std::string& out, std::string_view name, std::string_view labels, double v);
void AppendHistogram(std::string& out, const std::string& name, const std::string& labels,
                     const Histogram& h);

}  // namespace internal

// Children of one metric name by label values. T is Counter, Gauge or Histogram.
template <typename T>
class Family final : public internal::FamilyBase {
 public:
  // The child for these label values (as many as the family has label names, in their
  // order), created on first use. The reference stays valid for the registry's life. Takes
  // the family's mutex: look children up once, not per observation.
  T& Labels(const std::vector<std::string>& values) {
    absl::MutexLock lock(&mu_);
    auto it = children_.find(values);
    if (it == children_.end()) {
      auto child = std::make_unique<Child>(RenderLabels(values), make_());
      it = children_.emplace(values, std::move(child)).first;
    }
    return *it->second->metric;
  }

  // Internal: the registry makes families.
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> labels,
         std::function<std::unique_ptr<T>()> make)
      : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
        make_(std::move(make)) {}

 private:
  struct Child {
    Child(std::string l, std::unique_ptr<T> m) : labels(std::move(l)), metric(std::move(m)) {}
    std::string labels;  // rendered once
    std::unique_ptr<T> metric;
  };
  void AppendSamples(std::string& out) const override {
    absl::MutexLock lock(&mu_);
    for (const auto& [values, child] : children_) {
      if constexpr (std::is_same_v<T, Histogram>) {
        internal::AppendHistogram(out, name(), child->labels, *child->metric);
      } else {
        internal::AppendSample(out, name(), child->labels, child->metric->Value());
      }
    }
  }

  const std::function<std::unique_ptr<T>()> make_;
  mutable absl::Mutex mu_;
  // Ordered by label values, so the exposition is stable.
  std::map<std::vector<std::string>, std::unique_ptr<Child>> children_ ABSL_GUARDED_BY(mu_);
};

// A counter or gauge family whose children's values are computed at scrape time, for values
// that live elsewhere (scheduler state published under another component's lock).
class CallbackFamily final : public internal::FamilyBase {
 public:
  using Fn = std::function<double()>;
  // Sets (or replaces) the callback of the child with these label values. The callback runs
  // during Expose() on the scraping thread, outside the registry's locks, so it may take the
  // locks of the component it reads; it must be thread-safe, must not call Expose(), and what
  // it refers to must outlive the scrapes (stop the HTTP server before destroying it, or
  // Remove() the child).
  void Set(const std::vector<std::string>& values, Fn fn);
  // Removes the child (no-op when absent). A scrape in progress may still run the old callback.
  void Remove(const std::vector<std::string>& values);

  // Internal: the registry makes families.
  CallbackFamily(std::string name, std::string help, MetricType type,
                 std::vector<std::string> labels);

 private:
  void AppendSamples(std::string& out) const override;

  struct Child {
    std::string labels;
    std::shared_ptr<const Fn> fn;
  };
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, Child> children_ ABSL_GUARDED_BY(mu_);
};

// Owns the families and writes the exposition. Families appear in registration order.
class Registry {
 public:
  // The Content-Type of Expose()'s output.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Each adds a family; the reference is valid for the registry's life. A name already
  // added is a programming error (TESSERA_CHECK), as are invalid names (see the top).
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names = {});
  // Every child of the family gets the same `bounds` (see Histogram).
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names, std::vector<double> bounds);
  // `type` is kCounter or kGauge (TESSERA_CHECK).
  CallbackFamily& AddCallback(MetricType type, std::string name, std::string help,
                              std::vector<std::string> label_names = {});

  // The text format 0.0.4: for each family with at least one child, "# HELP name help"
  // (`\` and newline escaped), "# TYPE name counter|gauge|histogram", then one line per
  // sample: `name{labels} value`, label values escaped (`\`, `"`, newline); a histogram's
  // children give `name_bucket{labels,le="bound"}` cumulative counts ending with le="+Inf",
  // then `name_sum` and `name_count`. Values: shortest round-trip decimal, "+Inf", "-Inf",
  // "NaN". Runs the callbacks.
  std::string Expose() const;

 private:
  void Add(std::unique_ptr<internal::FamilyBase> family);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<internal::FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
};

// Escaping as the text format wants it (exposed for tests and other writers).
std::string EscapeHelp(std::string_view help);         // `\` -> `\\`, newline -> `\n`
std::string EscapeLabelValue(std::string_view value);  // also `"` -> `\"`
std::string FormatValue(double v);                     // shortest round-trip, +Inf, NaN

}  // namespace tessera::metrics
