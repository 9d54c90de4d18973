// A child process for multi-process tests: spawned into its own process
// group with stdout and stderr going to a log file, waited on with a
// deadline, and killed with its whole group (SIGTERM, a grace period, then
// SIGKILL) when the object dies, so a failing test never leaks processes.
// Also: /proc scans to find processes by a marker in their command line and
// an environment variable (e.g. the MPI rank of an mpirun'd child), and
// waiting for the port file of a server started with --port 0.
//
// Not thread-safe: one thread owns a Process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tessera::testing {

class Process {
 public:
  // Starts argv[0] (looked up in PATH when it has no '/') with the given
  // arguments in a new process group; stdout and stderr are appended to
  // `log_path`; the environment is this process's plus `extra_env`
  // ("NAME=value" entries). Returns nullptr and sets *error when fork/exec
  // fails (an exec failure shows as exit code 127 and a line in the log).
  static std::unique_ptr<Process> Spawn(const std::vector<std::string>& argv,
                                        const std::string& log_path, std::string* error,
                                        const std::vector<std::string>& extra_env = {});

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // Kills the process group (see KillGroup) unless the process was reaped.
  ~Process();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Polls until the process exits or `timeout` passes. Returns its exit code
  // (128 + signal number when a signal ended it) or nullopt on timeout. Once
  // it returned a code, later calls return the same code.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  // True while the process has not been reaped (non-blocking check).
  bool Running();

  // Sends `sig` to the process only (not its group).
  void Signal(int sig);
  // SIGTERM to the process group, up to `grace` for the leader to exit, then
  // SIGKILL to the group; reaps the leader.
  void KillGroup(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

  // The last `max_bytes` of the log file.
  std::string LogTail(size_t max_bytes = 6000) const;

 private:
  Process(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}

  pid_t pid_;
  std::string log_path_;
  std::optional<int> exit_code_;
};

// Processes (other than the caller) whose NUL-separated command line contains
// `marker`, and, when `env_entry` is non-empty, whose environment holds
// exactly that "NAME=value" entry. Zombies are skipped.
std::vector<pid_t> FindProcesses(const std::string& marker, const std::string& env_entry = "");

// SIGKILLs every process FindProcesses(marker) returns, then waits (at most
// 10 s) until none is left, so what they held (their ports) is free again.
void KillProcesses(const std::string& marker);

// Polls `condition` every few milliseconds until it returns true or
// `timeout` passes; returns its last value.
template <typename F>
bool PollUntil(std::chrono::milliseconds timeout, F&& condition);

// A fresh, unique, empty directory under the system temp directory.
std::string MakeTempDir(const std::string& prefix);

// The whole content of a file ("" when it cannot be read).
std::string ReadTestFile(const std::string& path);

// Process::Spawn after writing "$ ARGV..." as the log's first line, so a
// failure's log tail shows the command that was run.
std::unique_ptr<Process> SpawnLogged(const std::vector<std::string>& argv,
                                     const std::string& log_path, std::string* error);

// Polls until `path` holds at least `count` positive port numbers (then
// returns the first `count`) or `process` exits or `timeout` passes
// (nullopt). For servers started with --port 0 --port-file: the file is
// written atomically (write + rename) once they listen.
std::optional<std::vector<int>> WaitPortFile(const std::string& path, size_t count,
                                             Process& process, std::chrono::milliseconds timeout);

}  // namespace tessera::testing

#include <thread>

namespace tessera::testing {

template <typename F>
bool PollUntil(std::chrono::milliseconds timeout, F&& condition) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace tessera::testing
