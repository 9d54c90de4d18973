#include "router/cli/cli_format.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/api/wire_names.h"

namespace tessera::cli {

std::string StateName(v1::WorkerInfo::State state) {
  return std::string(api::WorkerStateWord(state));
}

std::string SourceName(v1::WorkerInfo::Source source) {
  switch (source) {
    case v1::WorkerInfo::SOURCE_STATIC:
      return "static";
    case v1::WorkerInfo::SOURCE_REGISTERED:
      return "registered";
    case v1::WorkerInfo::SOURCE_ADMIN:
      return "admin";
    case v1::WorkerInfo::SOURCE_DNS:
      return "dns";
    case v1::WorkerInfo::SOURCE_UNSPECIFIED:
    case v1::WorkerInfo_Source_WorkerInfo_Source_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::WorkerInfo_Source_WorkerInfo_Source_INT_MAX_SENTINEL_DO_NOT_USE_:
      break;
  }
  return "unknown";
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return "";
  const size_t columns = rows[0].size();
  std::vector<size_t> width(columns, 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < columns && c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < columns; ++c) {
      const std::string cell = c < row.size() ? row[c] : "";
      line += cell;
      if (c + 1 < columns) line.append(width[c] - cell.size() + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string FormatPercent(double fraction) {
  if (!std::isfinite(fraction)) return "-";
  const double percent = 100.0 * fraction;
  if (percent > 0 && percent < 1) return absl::StrFormat("%.1f%%", percent);
  return absl::StrFormat("%.0f%%", percent);
}

std::string FormatKvUse(int64_t used, int64_t total) {
  if (total <= 0) return "-";
  return absl::StrCat(used, "/", total, " (",
                      FormatPercent(static_cast<double>(used) / static_cast<double>(total)), ")");
}

std::string FormatWorkersTable(const v1::ListWorkersResponse& workers) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back(
      {"ID", "ADDRESS", "STATE", "RUNNING", "WAITING", "KV USE", "PREFIX HIT", "IN-FLIGHT"});
  for (const v1::WorkerInfo& w : workers.workers()) {
    std::vector<std::string> row = {w.id(), w.address(), StateName(w.state())};
    if (w.has_load()) {
      const v1::LoadReport& load = w.load();
      row.push_back(absl::StrCat(load.running()));
      row.push_back(absl::StrCat(load.waiting()));
      row.push_back(FormatKvUse(load.kv_blocks_used(), load.kv_blocks_total()));
      row.push_back(FormatPercent(load.prefix_cache_hit_rate()));
    } else {
      row.insert(row.end(), {"-", "-", "-", "-"});
    }
    row.push_back(absl::StrCat(w.in_flight()));
    rows.push_back(std::move(row));
  }
  return FormatTable(rows);
}

nlohmann::ordered_json WorkerToJson(const v1::WorkerInfo& w) {
  nlohmann::ordered_json j = {
      {"id", w.id()},
      {"address", w.address()},
      {"state", StateName(w.state())},
      {"source", SourceName(w.source())},
      {"in_flight", w.in_flight()},
      {"requests_routed", w.requests_routed()},
      {"consecutive_failures", w.consecutive_failures()},
      {"last_error", w.last_error()},
      {"block_size", w.block_size()},
  };
  if (w.has_load()) {
    const v1::LoadReport& l = w.load();
    j["load"] = {
        {"worker_id", l.worker_id()},
        {"running", l.running()},
        {"waiting", l.waiting()},
        {"kv_blocks_used", l.kv_blocks_used()},
        {"kv_blocks_total", l.kv_blocks_total()},
        {"prefix_cache_hit_rate", l.prefix_cache_hit_rate()},
        {"prefix_cache_queried_tokens", l.prefix_cache_queried_tokens()},
        {"prefix_cache_hit_tokens", l.prefix_cache_hit_tokens()},
        {"tokens_per_second", l.tokens_per_second()},
        {"draining", l.draining()},
        {"in_flight", l.in_flight()},
        {"block_size", l.block_size()},
        {"model", l.model()},
    };
  } else {
    j["load"] = nullptr;
  }
  return j;
}

nlohmann::ordered_json WorkersToJson(const v1::ListWorkersResponse& workers) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const v1::WorkerInfo& w : workers.workers()) list.push_back(WorkerToJson(w));
  return {{"workers", std::move(list)}};
}

nlohmann::ordered_json ClusterStatusToJson(const v1::ClusterStatus& s) {
  // Ordered as a reader scans it: what serves, how busy, how well cached,
  // what happened to requests.
  return {
      {"policy", s.policy()},
      {"workers", s.workers()},
      {"healthy", s.healthy()},
      {"draining", s.draining()},
      {"unhealthy", s.unhealthy()},
      {"running", s.running()},
      {"waiting", s.waiting()},
      {"prefix_cache_hit_rate", s.prefix_cache_hit_rate()},
      {"prefix_cache_queried_tokens", s.prefix_cache_queried_tokens()},
      {"prefix_cache_hit_tokens", s.prefix_cache_hit_tokens()},
      {"requests_in_flight", s.requests_in_flight()},
      {"requests_total", s.requests_total()},
      {"requests_failed", s.requests_failed()},
      {"requests_retried", s.requests_retried()},
      {"requests_rejected", s.requests_rejected()},
  };
}

std::string FormatClusterStatus(const v1::ClusterStatus& s) {
  const nlohmann::ordered_json j = ClusterStatusToJson(s);
  std::string out;
  for (const auto& [key, value] : j.items()) {
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (key == "prefix_cache_hit_rate") {
      text = absl::StrFormat("%.4f", value.get<double>());
    } else {
      text = value.dump();
    }
    absl::StrAppend(&out, key, ": ", text, "\n");
  }
  return out;
}

}  // namespace tessera::cli
