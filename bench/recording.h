// tessera-bench's --record and --replay: every call of a run written as one
// JSON line (the request as sent and the output token ids received), and a
// later run that sends the completed calls again and compares the outputs
// token for token. bench/chaos.sh uses the pair to find streams with a seam:
// a stream that failed over mid-way must equal an uninterrupted run of the
// same request (greedy, or sampled with the same seed).
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/bench_load.h"

namespace tessera::bench {

// Appends calls to a JSONL file. Not thread-safe: the Driver's observer calls
// it under the driver's lock.
class Recorder {
 public:
  static absl::StatusOr<std::unique_ptr<Recorder>> Open(const std::string& path);
  ~Recorder();
  void Write(const Planned& plan, const CallRecord& record, const std::vector<int32_t>& output);
  // Flushes and closes; an error names the file.
  absl::Status Close();

 private:
  Recorder(std::string path, std::FILE* f) : path_(std::move(path)), f_(f) {}
  const std::string path_;
  std::FILE* f_;
  bool write_failed_ = false;
};

// The calls of a recording that completed OK, with their recorded outputs.
struct Recording {
  std::vector<Planned> calls;                       // in file order
  std::map<int64_t, std::vector<int32_t>> outputs;  // by Planned::index
  int64_t skipped = 0;                              // lines of calls that failed
};
// Reads a --record file; an error names the file and line.
absl::StatusOr<Recording> ReadRecording(const std::string& path);

// Compares replayed outputs with the recorded ones. Not thread-safe (the
// Driver's observer calls it under the driver's lock).
class ReplayCheck {
 public:
  explicit ReplayCheck(const Recording& recording) : recorded_(recording.outputs) {}
  void Add(const Planned& plan, const CallRecord& record, const std::vector<int32_t>& output);
  // Prints "replay: N calls compared: M identical, K differ, F failed" and
  // the first differences to `out`; returns whether every call was identical.
  bool Print(std::FILE* out) const;

 private:
  const std::map<int64_t, std::vector<int32_t>>& recorded_;
  int64_t same_ = 0;
  int64_t failed_ = 0;
  std::vector<std::string> differences_;  // one line per call that differs
};

}  // namespace tessera::bench
