#include "common/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "common/check.h"

namespace tessera::metrics {
namespace {

bool IsMetricName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsLabelName(std::string_view s) {
  if (s.empty() || s.starts_with("__")) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

}  // namespace

void Counter::Inc(double v) {
  TESSERA_CHECK(v >= 0.0, "a counter only goes up (Inc(", v, "))");
  value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_([&] {
        if (!bounds.empty() && bounds.back() == std::numeric_limits<double>::infinity()) {
          bounds.pop_back();
        }
        for (size_t i = 0; i < bounds.size(); ++i) {
          TESSERA_CHECK(!std::isnan(bounds[i]), "histogram bound ", i, " is NaN");
          TESSERA_CHECK(i == 0 || bounds[i - 1] < bounds[i],
                        "histogram bounds must increase strictly (bound ", i, ")");
        }
        return std::move(bounds);
      }()),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // First bound >= v; NaN compares false everywhere, so it lands in +Inf explicitly.
  const size_t i = std::isnan(v)
                       ? bounds_.size()
                       : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                             bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

namespace buckets {

std::vector<double> TimeToFirstToken() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}

std::vector<double> InterTokenLatency() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}

std::vector<double> RequestLatency() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

std::vector<double> IterationTokens() {
  return {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
}

std::vector<double> OneTwoFive(double max_value) {
  std::vector<double> out;
  for (double scale = 1.0;; scale *= 10.0) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m * scale > max_value) return out;
      out.push_back(m * scale);
    }
  }
}

std::vector<double> Exponential(double start, double factor, int count) {
  TESSERA_CHECK(start > 0 && factor > 1 && count >= 1, "Exponential(", start, ", ", factor, ", ",
                count, ")");
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

}  // namespace buckets

namespace internal {

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {
  TESSERA_CHECK(IsMetricName(name_), "invalid metric name '", name_, "'");
  for (const std::string& l : label_names_) {
    TESSERA_CHECK(IsLabelName(l), "invalid label name '", l, "' of metric ", name_);
    TESSERA_CHECK(type_ != MetricType::kHistogram || l != "le", "histogram ", name_,
                  " may not have a label called 'le'");
    TESSERA_CHECK(std::count(label_names_.begin(), label_names_.end(), l) == 1, "label '", l,
                  "' of metric ", name_, " appears twice");
  }
}

std::string FamilyBase::RenderLabels(const std::vector<std::string>& values) const {
  TESSERA_CHECK(values.size() == label_names_.size(), "metric ", name_, " has ",
                label_names_.size(), " labels, got ", values.size(), " values");
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += label_names_[i];
    out += "=\"";
    out += EscapeLabelValue(values[i]);
    out += '"';
  }
  return out;
}

}  // namespace internal

CallbackFamily::CallbackFamily(std::string name, std::string help, MetricType type,
                               std::vector<std::string> labels)
    : FamilyBase(std::move(name), std::move(help), type, std::move(labels)) {
  TESSERA_CHECK(type != MetricType::kHistogram, "callback metric ", this->name(),
                " must be a counter or a gauge");
}

void CallbackFamily::Set(const std::vector<std::string>& values, Fn fn) {
  TESSERA_CHECK(fn != nullptr, "empty callback for metric ", name());
  Child child{RenderLabels(values), std::make_shared<const Fn>(std::move(fn))};
  absl::MutexLock lock(&mu_);
  children_.insert_or_assign(values, std::move(child));
}

void CallbackFamily::Remove(const std::vector<std::string>& values) {
  absl::MutexLock lock(&mu_);
  children_.erase(values);
}

void CallbackFamily::AppendSamples(std::string& out) const {
  std::vector<Child> children;
  {
    absl::MutexLock lock(&mu_);
    children.reserve(children_.size());
    for (const auto& [values, child] : children_) children.push_back(child);
  }
  // Outside mu_: a callback may take its component's locks.
  for (const Child& c : children) internal::AppendSample(out, name(), c.labels, (*c.fn)());
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  auto f = std::make_unique<Family<Counter>>(std::move(name), std::move(help), MetricType::kCounter,
                                             std::move(label_names),
                                             [] { return std::make_unique<Counter>(); });
  Family<Counter>& ref = *f;
  Add(std::move(f));
  return ref;
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  auto f = std::make_unique<Family<Gauge>>(std::move(name), std::move(help), MetricType::kGauge,
                                           std::move(label_names),
                                           [] { return std::make_unique<Gauge>(); });
  Family<Gauge>& ref = *f;
  Add(std::move(f));
  return ref;
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds) {
  // Validate the bounds now, not at the first child.
  const Histogram probe(bounds);
  auto f = std::make_unique<Family<Histogram>>(
      std::move(name), std::move(help), MetricType::kHistogram, std::move(label_names),
      [b = probe.bounds()] { return std::make_unique<Histogram>(b); });
  Family<Histogram>& ref = *f;
  Add(std::move(f));
  return ref;
}

CallbackFamily& Registry::AddCallback(MetricType type, std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  auto f = std::make_unique<CallbackFamily>(std::move(name), std::move(help), type,
                                            std::move(label_names));
  CallbackFamily& ref = *f;
  Add(std::move(f));
  return ref;
}

void Registry::Add(std::unique_ptr<internal::FamilyBase> family) {
  absl::MutexLock lock(&mu_);
  for (const auto& f : families_) {
    TESSERA_CHECK(f->name() != family->name(), "metric ", family->name(), " added twice");
  }
  families_.push_back(std::move(family));
}

std::string Registry::Expose() const {
  std::vector<const internal::FamilyBase*> families;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& f : families_) families.push_back(f.get());
  }
  std::string out;
  out.reserve(families.size() * 256);
  for (const internal::FamilyBase* f : families) f->Expose(out);
  return out;
}

}  // namespace tessera::metrics
