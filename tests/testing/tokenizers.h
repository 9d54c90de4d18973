// Test helpers around the reference tokenizers in ../shared/tokenizers and
// ../shared/models/stories260K. Header-only; for tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/tokenizer/loader.h"
#include "nlohmann/json.hpp"

namespace tessera::testing {

// $TESSERA_SHARED_DIR when set, else the ../shared of the source tree.
inline std::string SharedDir() {
  const char* shared = std::getenv("TESSERA_SHARED_DIR");
  return shared != nullptr && shared[0] != '\0' ? shared : TESSERA_SHARED_DIR;
}

// "qwen3", "mistral" (../shared/tokenizers/NAME) or "stories260K" (../shared/models).
inline std::string TokenizerDir(const std::string& name) {
  return SharedDir() + (name == "stories260K" ? "/models/" : "/tokenizers/") + name;
}

inline bool HaveTokenizer(const std::string& name) {
  return std::filesystem::exists(TokenizerDir(name) + "/tokenizer.json");
}

// The tokenizer of `name`, loaded once per process (the Qwen3 file is 11 MB).
inline const LoadedTokenizer& SharedTokenizer(const std::string& name) {
  static std::mutex mu;
  static auto* cache = new std::map<std::string, std::unique_ptr<LoadedTokenizer>>();
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*cache)[name];
  if (slot == nullptr) {
    auto loaded = LoadTokenizerFromDir(TokenizerDir(name), 512);
    if (!loaded.ok()) {
      std::fprintf(stderr, "loading %s: %s\n", name.c_str(), loaded.status().ToString().c_str());
      std::abort();
    }
    slot = std::make_unique<LoadedTokenizer>(*std::move(loaded));
  }
  return *slot;
}

// The lines of a JSONL file.
inline std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

}  // namespace tessera::testing

#define TESSERA_REQUIRE_TOKENIZER(name)                                    \
  do {                                                                     \
    if (!::tessera::testing::HaveTokenizer(name)) {                        \
      GTEST_SKIP() << "reference tokenizer " << (name) << " not found at " \
                   << ::tessera::testing::TokenizerDir(name)               \
                   << " (it lives in ../shared); skipping";                \
    }                                                                      \
  } while (0)
