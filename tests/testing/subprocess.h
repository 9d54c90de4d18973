// Runs a shell command for tests, bounded by a timeout, capturing stdout.
// Header-only; for tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace tessera::testing {

struct CommandResult {
  int exit_code = -1;  // 124 when the timeout killed it
  std::string out;     // stdout (stderr goes to the test log)
};

// Runs `command` under `timeout --kill-after=5 <seconds>` so a hung child can
// never hang the test.
inline CommandResult RunCommand(const std::string& command, int timeout_seconds) {
  CommandResult r;
  const std::string full =
      "timeout --kill-after=5 " + std::to_string(timeout_seconds) + " " + command;
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace tessera::testing
