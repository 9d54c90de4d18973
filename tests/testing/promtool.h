// Checks a Prometheus text exposition with `promtool check metrics` (Debian's `prometheus`
// package; deploy/install-deps.sh installs it). Header-only; for tests.
//
// promtool 2.42 (Debian 12) has no --lint switch and lints every name with a ':' ("metric
// names should not contain ':'", exit 3), while vLLM's metric names, which Tessera keeps, are
// all `vllm:...`; and vLLM's histogram `vllm:iteration_tokens_total` ends in "_total" ("non-
// counter metrics should not have "_total" suffix"). So the check passes when promtool exits 0,
// or exits 3 and every problem it reports is one of those two; a parse error (exit 1) or any
// other lint problem fails.
//
// Without promtool the test skips loudly, and fails when CI=true (a skip there would hide that
// the format was never checked).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace tessera::testing {

inline std::string FindPromtool() {
  for (const char* p : {"/usr/bin/promtool", "/usr/local/bin/promtool"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

inline bool RunningUnderCi() {
  const char* v = std::getenv("CI");
  return v != nullptr && std::string(v) == "true";
}

// Runs promtool on `exposition`; returns "" when it passes (see the top), else what it said.
inline std::string PromtoolProblems(const std::string& promtool, const std::string& exposition) {
  char dir_template[] = "/tmp/tessera_promtool_XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  if (dir == nullptr) return "mkdtemp failed";
  const std::string in = std::string(dir) + "/metrics.txt";
  const std::string out_path = std::string(dir) + "/out.txt";
  std::ofstream(in, std::ios::binary) << exposition;
  const std::string cmd = promtool + " check metrics < " + in + " > " + out_path + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream f(out_path);
  std::string output((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (rc == 0) return "";
  if (rc == 3) {
    std::string others;
    for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
      if (!absl::EndsWith(line, " metric names should not contain ':'") &&
          line !=
              "vllm:iteration_tokens_total non-counter metrics should not have \"_total\" "
              "suffix") {
        absl::StrAppend(&others, line, "\n");
      }
    }
    if (others.empty()) return "";
    return "promtool lint problems:\n" + others;
  }
  return "promtool exit " + std::to_string(rc) + ":\n" + output;
}

}  // namespace tessera::testing

// In a test: checks `text` with promtool (EXPECT), or skips / fails (CI=true) without it.
#define TESSERA_EXPECT_PROMTOOL_OK(text)                                                     \
  do {                                                                                       \
    const std::string promtool_ = ::tessera::testing::FindPromtool();                        \
    if (promtool_.empty()) {                                                                 \
      if (::tessera::testing::RunningUnderCi()) {                                            \
        GTEST_FAIL() << "promtool not found and CI=true: install the `prometheus` package "  \
                        "(deploy/install-deps.sh)";                                          \
      }                                                                                      \
      GTEST_SKIP() << "SKIPPED: promtool not found (apt-get install prometheus, see "        \
                      "deploy/install-deps.sh); the exposition was not checked by promtool"; \
    }                                                                                        \
    EXPECT_EQ(::tessera::testing::PromtoolProblems(promtool_, (text)), "") << (text);        \
  } while (0)
