// tessera-bench's report: the records of a run aggregated into counts,
// throughput and latency percentiles, printed as a table (stdout, or stderr
// when the JSON goes to stdout) and, with --json, as one JSON document.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/bench_load.h"
#include "bench/bench_options.h"
#include "bench/grpc_calls.h"

namespace tessera::bench {

// The server's prefix-cache counters over the run (after - before) and where
// they came from.
struct PrefixDelta {
  PrefixCounters counters;
  std::string source;
};

// Prints the report of a run that took `wall_s` seconds; returns the process
// exit code: 0 when no call failed (calls the client hung up on purpose do
// not count as failed), 1 otherwise or when the JSON file cannot be written.
int Report(const Options& o, const std::vector<CallRecord>& records, double wall_s,
           const std::optional<PrefixDelta>& prefix);

}  // namespace tessera::bench
