#include "bench/bench_report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "nlohmann/json.hpp"

namespace tessera::bench {
namespace {

struct Distribution {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0, max = 0;
  size_t count = 0;
};

Distribution Summarize(std::vector<double> v) {
  Distribution d;
  d.count = v.size();
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  auto at = [&v](double p) {
    return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
  };
  d.p50 = at(0.5);
  d.p90 = at(0.9);
  d.p99 = at(0.99);
  double sum = 0;
  for (double x : v) sum += x;
  d.mean = sum / v.size();
  d.max = v.back();
  return d;
}

nlohmann::ordered_json ToJson(const Distribution& d) {
  return {{"p50", d.p50},   {"p90", d.p90}, {"p99", d.p99},
          {"mean", d.mean}, {"max", d.max}, {"count", d.count}};
}

}  // namespace

int Report(const Options& o, const std::vector<CallRecord>& records, double wall_s,
           const std::optional<PrefixDelta>& prefix) {
  // ---- aggregate
  int64_t completed = 0, disconnected = 0, output_tokens = 0, prompt_tokens = 0, cached_tokens = 0;
  std::map<std::string, int64_t> failures;
  std::vector<double> ttft, itl, e2e, lag, server_ttft, outside_ttft;
  int printed_errors = 0;
  for (const CallRecord& r : records) {
    output_tokens += r.output_tokens;
    if (o.rate > 0) lag.push_back(Ms(r.sent - r.scheduled));
    if (r.disconnected && r.failure.empty()) {
      ++disconnected;
      continue;
    }
    if (!r.ok()) {
      ++failures[r.failure];
      if (printed_errors++ < 5) {
        std::fprintf(stderr, "tessera-bench: a call failed: %s: %s\n", r.failure.c_str(),
                     r.error.c_str());
      }
      continue;
    }
    ++completed;
    prompt_tokens += r.prompt_tokens;
    cached_tokens += r.cached_prompt_tokens;
    if (r.output_tokens > 0) {
      ttft.push_back(Ms(r.first_token - r.sent));
      if (r.server_ttft_ms.has_value()) {
        server_ttft.push_back(*r.server_ttft_ms);
        outside_ttft.push_back(ttft.back() - *r.server_ttft_ms);
      }
    }
    e2e.push_back(Ms(r.done - r.sent));
    itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
  }
  const int64_t failed = static_cast<int64_t>(records.size()) - completed - disconnected;
  const Distribution d_server_ttft = Summarize(server_ttft),
                     d_outside_ttft = Summarize(outside_ttft);
  const Distribution d_ttft = Summarize(ttft), d_itl = Summarize(itl), d_e2e = Summarize(e2e),
                     d_lag = Summarize(lag);
  const double req_per_s = wall_s > 0 ? completed / wall_s : 0;
  const double tok_per_s = wall_s > 0 ? output_tokens / wall_s : 0;
  std::optional<double> usage_hit;
  if (prompt_tokens > 0) usage_hit = static_cast<double>(cached_tokens) / prompt_tokens;

  // ---- text report (stdout, or stderr when the JSON goes to stdout)
  std::FILE* text = o.json == "-" ? stderr : stdout;
  std::fprintf(text, "target: %s (%s)\n", o.target.c_str(), ServiceName(o).c_str());
  std::fprintf(text, "workload: %s\n", WorkloadDescription(o).c_str());
  std::fprintf(text, "arrivals: %s\n", ArrivalDescription(o).c_str());
  std::fprintf(text, "requests: %lld (%lld failed)\n", static_cast<long long>(records.size()),
               static_cast<long long>(failed));
  if (o.disconnect_after_tokens > 0) {
    std::fprintf(text, "disconnected by the client after %d chunks: %lld\n",
                 o.disconnect_after_tokens, static_cast<long long>(disconnected));
  }
  for (const auto& [kind, n] : failures) {
    std::fprintf(text, "failed %s: %lld\n", kind.c_str(), static_cast<long long>(n));
  }
  std::fprintf(text, "output tokens: %lld\n", static_cast<long long>(output_tokens));
  std::fprintf(text, "wall time: %.3f s\n", wall_s);
  std::fprintf(text, "requests/s: %.2f\n", req_per_s);
  std::fprintf(text, "output tokens/s: %.1f\n", tok_per_s);
  if (usage_hit.has_value()) {
    std::fprintf(text, "prefix cache hit (usage): %.2f%% (%lld of %lld prompt tokens)\n",
                 100 * *usage_hit, static_cast<long long>(cached_tokens),
                 static_cast<long long>(prompt_tokens));
  }
  if (prefix.has_value()) {
    const PrefixCounters& d = prefix->counters;
    std::fprintf(text, "prefix cache hit (%s counters): %.2f%% (%lld of %lld tokens)\n",
                 prefix->source.c_str(), d.queried > 0 ? 100.0 * d.hit / d.queried : 0.0,
                 static_cast<long long>(d.hit), static_cast<long long>(d.queried));
  }
  std::fprintf(text, "%-14s %10s %10s %10s %10s %10s\n", "latency (ms)", "p50", "p90", "p99",
               "mean", "max");
  auto row = [text](const char* name, const Distribution& d) {
    std::fprintf(text, "%-14s %10.2f %10.2f %10.2f %10.2f %10.2f\n", name, d.p50, d.p90, d.p99,
                 d.mean, d.max);
  };
  row("TTFT", d_ttft);
  if (d_server_ttft.count > 0) {
    row("server TTFT", d_server_ttft);
    row("TTFT outside", d_outside_ttft);
  }
  row("inter-token", d_itl);
  row("end-to-end", d_e2e);
  if (o.rate > 0) row("send lag", d_lag);
  std::fflush(text);

  // ---- JSON report
  if (!o.json.empty()) {
    nlohmann::ordered_json failed_by;
    for (const auto& [kind, n] : failures) failed_by[kind] = n;
    nlohmann::ordered_json j = {
        {"target", o.target},
        {"api", o.api == Api::kGrpc ? "grpc" : "openai"},
        {"service", ServiceName(o)},
        {"workload", o.workload_name},
        {"workload_description", WorkloadDescription(o)},
        {"arrivals", ArrivalDescription(o)},
        {"rate", o.rate},
        {"poisson", o.poisson},
        {"concurrency", o.concurrency},
        {"requests", static_cast<int64_t>(records.size())},
        {"completed", completed},
        {"failed", failed},
        {"failed_by_code", failed_by.is_null() ? nlohmann::ordered_json::object() : failed_by},
        {"disconnected", disconnected},
        {"wall_s", wall_s},
        {"requests_per_s", req_per_s},
        {"output_tokens", output_tokens},
        {"output_tokens_per_s", tok_per_s},
        {"prompt_tokens", prompt_tokens},
        {"cached_prompt_tokens", cached_tokens},
        {"prefix_cache_hit_rate_usage",
         usage_hit.has_value() ? nlohmann::ordered_json(*usage_hit) : nullptr},
        {"ttft_ms", ToJson(d_ttft)},
        {"server_ttft_ms", d_server_ttft.count > 0 ? ToJson(d_server_ttft) : nullptr},
        {"ttft_outside_server_ms", d_outside_ttft.count > 0 ? ToJson(d_outside_ttft) : nullptr},
        {"itl_ms", ToJson(d_itl)},
        {"e2e_ms", ToJson(d_e2e)},
    };
    if (o.rate > 0) j["send_lag_ms"] = ToJson(d_lag);
    if (prefix.has_value()) {
      const PrefixCounters& d = prefix->counters;
      j["prefix_cache"] = {
          {"source", prefix->source},
          {"queried_tokens", d.queried},
          {"hit_tokens", d.hit},
          {"hit_rate", d.queried > 0 ? static_cast<double>(d.hit) / d.queried : 0.0},
      };
    } else {
      j["prefix_cache"] = nullptr;
    }
    if (o.json == "-") {
      std::cout << j.dump(2) << std::endl;
    } else {
      std::ofstream out(o.json);
      out << j.dump(2) << "\n";
      if (!out) {
        std::fprintf(stderr, "tessera-bench: cannot write %s\n", o.json.c_str());
        return 1;
      }
    }
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace tessera::bench
