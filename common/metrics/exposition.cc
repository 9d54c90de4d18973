// The text format 0.0.4 writer: escaping, number formatting and the lines of each family.
#include <charconv>
#include <cmath>
#include <string>
#include <string_view>

#include "common/metrics/metrics.h"

namespace tessera::metrics {

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip
  return std::string(buf, ec == std::errc() ? end : buf);
}

namespace internal {
namespace {

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

void FamilyBase::Expose(std::string& out) const {
  std::string samples;
  AppendSamples(samples);
  if (samples.empty()) return;  // no children yet: nothing to say
  out += "# HELP ";
  out += name_;
  out += ' ';
  out += EscapeHelp(help_);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += TypeName(type_);
  out += '\n';
  out += samples;
}

void AppendSample(std::string& out, std::string_view name, std::string_view labels, double v) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += FormatValue(v);
  out += '\n';
}

void AppendHistogram(std::string& out, const std::string& name, const std::string& labels,
                     const Histogram& h) {
  const Histogram::Snapshot s = h.Read();
  const std::string bucket = name + "_bucket";
  const std::string prefix = labels.empty() ? std::string() : labels + ",";
  for (size_t i = 0; i < s.cumulative.size(); ++i) {
    const std::string le = i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf";
    AppendSample(out, bucket, prefix + "le=\"" + le + "\"", static_cast<double>(s.cumulative[i]));
  }
  AppendSample(out, name + "_sum", labels, s.sum);
  AppendSample(out, name + "_count", labels, static_cast<double>(s.count));
}

}  // namespace internal
}  // namespace tessera::metrics
