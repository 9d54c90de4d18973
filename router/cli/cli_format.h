// What the `tessera` CLI prints: the workers table, `key: value` status
// lines, and the JSON documents of --json (snake_case keys as in the protos,
// enums as lowercase words, numbers as JSON numbers). Pure functions;
// thread-safe.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tessera/v1/admin.pb.h"

namespace tessera::cli {

// "healthy", "unhealthy", "draining" or "unknown".
std::string StateName(v1::WorkerInfo::State state);
// "static", "registered", "admin", "dns" or "unknown".
std::string SourceName(v1::WorkerInfo::Source source);

// Left-aligned columns, two spaces apart, one line per row (rows[0] is the
// header); no trailing spaces. Rows shorter than the header are padded.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

// "used/total (P%)", e.g. "120/512 (23%)"; "-" when total is 0.
std::string FormatKvUse(int64_t used, int64_t total);
// A fraction in [0, 1] as a whole percentage, "45%" ("0.5%" below 1%
// but above 0).
std::string FormatPercent(double fraction);

// The `tessera workers` table: ID, ADDRESS, STATE, RUNNING, WAITING, KV USE,
// PREFIX HIT, IN-FLIGHT; load columns are "-" for a worker without a load
// report. Just the header when there are no workers.
std::string FormatWorkersTable(const v1::ListWorkersResponse& workers);

nlohmann::ordered_json WorkerToJson(const v1::WorkerInfo& worker);
// {"workers": [WorkerToJson...]}
nlohmann::ordered_json WorkersToJson(const v1::ListWorkersResponse& workers);

// `key: value` lines, one per ClusterStatus field (the proto's names).
std::string FormatClusterStatus(const v1::ClusterStatus& status);
nlohmann::ordered_json ClusterStatusToJson(const v1::ClusterStatus& status);

}  // namespace tessera::cli
