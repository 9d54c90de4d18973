// Test helpers around the stories260K model in ../shared/models and its
// greedy reference. Header-only; for tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace tessera::testing {

// $TESSERA_SHARED_DIR when set (a relocated bundle, deploy/gpu-bundle.sh),
// else the ../shared of the source tree the test was built from.
inline std::string StoriesDir() {
  const char* shared = std::getenv("TESSERA_SHARED_DIR");
  return std::string(shared != nullptr && shared[0] != '\0' ? shared : TESSERA_SHARED_DIR) +
         "/models/stories260K";
}

inline bool HaveStories() {
  return std::filesystem::exists(StoriesDir() + "/model.safetensors") &&
         std::filesystem::exists(StoriesDir() + "/greedy_reference.jsonl");
}

struct GreedyReference {
  std::vector<int32_t> prompt;
  std::vector<int32_t> generated;
  int safe_prefix = 0;
};

inline std::vector<GreedyReference> LoadGreedyReference() {
  std::vector<GreedyReference> refs;
  std::ifstream in(StoriesDir() + "/greedy_reference.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    refs.push_back({j.at("prompt").get<std::vector<int32_t>>(),
                    j.at("generated").get<std::vector<int32_t>>(), j.at("safe_prefix").get<int>()});
  }
  return refs;
}

}  // namespace tessera::testing

#define TESSERA_REQUIRE_STORIES()                                                                \
  do {                                                                                           \
    if (!::tessera::testing::HaveStories()) {                                                    \
      GTEST_SKIP() << "stories260K test model not found at " << ::tessera::testing::StoriesDir() \
                   << " (it lives in ../shared/models); skipping";                               \
    }                                                                                            \
  } while (0)
