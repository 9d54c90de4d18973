// tokenizer_bench: encode throughput of Tessera's tokenizer on a JSONL corpus
// ({"text": ...} per line, one document each), one thread and N threads.
// Prints one line per run: MB/s of UTF-8 input, tokens/s, and a checksum of
// the ids (FNV-1a over the 32-bit ids, in corpus order) that
// bench/tokenizer_bench_hf.cjs prints too, so a side-by-side run also shows
// that both produced the same tokens.
//
//   tokenizer_bench --tokenizer DIR --corpus FILE.jsonl [--threads 0] [--min_seconds 2]
//   tokenizer_bench --tokenizer DIR --corpus FILE.jsonl --dump_ids
//   tokenizer_bench --tokenizer DIR --decode_ids IDS.jsonl
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "common/tokenizer/loader.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, tokenizer, "", "model or tokenizer directory (tokenizer.json)");
ABSL_FLAG(std::string, corpus, "", "JSONL file, one {\"text\": ...} document per line");
ABSL_FLAG(std::string, label, "", "corpus name for the output");
ABSL_FLAG(int, threads, 0, "threads of the multi-thread run (0: hardware threads)");
ABSL_FLAG(double, min_seconds, 2.0, "minimum duration of each timed run");
ABSL_FLAG(bool, dump_ids, false,
          "print {\"ids\": [...]} per document (add_special_tokens=false) instead of timing, "
          "to compare with another implementation");
ABSL_FLAG(std::string, decode_ids, "",
          "JSONL file of {\"ids\": [...]}: print {\"text\", \"text_special\"} per line (decode "
          "with and without skip_special_tokens) instead of timing");

namespace {

using Clock = std::chrono::steady_clock;

uint32_t Fnv1a(uint32_t h, int32_t id) {
  h ^= static_cast<uint32_t>(id);
  return h * 16777619u;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto loaded = tessera::LoadTokenizerFromDir(absl::GetFlag(FLAGS_tokenizer), 512);
  if (!loaded.ok()) {
    std::fprintf(stderr, "tokenizer: %s\n", loaded.status().ToString().c_str());
    return 1;
  }
  const tessera::Tokenizer& tok = *loaded->tokenizer;
  if (!absl::GetFlag(FLAGS_decode_ids).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_decode_ids));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto ids = nlohmann::json::parse(line).at("ids").get<std::vector<int32_t>>();
      auto text = tok.Decode(ids, true);
      auto special = tok.Decode(ids, false);
      if (!text.ok() || !special.ok()) {
        std::printf("{\"error\": %s}\n", nlohmann::json(text.status().ToString()).dump().c_str());
        continue;
      }
      std::printf("%s\n",
                  nlohmann::json{{"text", *text}, {"text_special", *special}}.dump().c_str());
    }
    return 0;
  }
  std::vector<std::string> docs;
  size_t bytes = 0;
  {
    std::ifstream in(absl::GetFlag(FLAGS_corpus));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      docs.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
      bytes += docs.back().size();
    }
  }
  if (docs.empty()) {
    std::fprintf(stderr, "corpus %s: no documents\n", absl::GetFlag(FLAGS_corpus).c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_dump_ids)) {
    for (const std::string& d : docs) {
      auto ids = tok.Encode(d, /*add_special_tokens=*/false);
      if (!ids.ok()) {
        std::printf("{\"error\": %s}\n", nlohmann::json(ids.status().ToString()).dump().c_str());
      } else {
        std::printf("{\"ids\": %s}\n", nlohmann::json(*ids).dump().c_str());
      }
    }
    return 0;
  }
  // Warm-up pass (fills the word cache, as the reference's warm-up does) and
  // the checksum.
  uint32_t checksum = 2166136261u;
  size_t tokens = 0;
  const Clock::time_point t0 = Clock::now();
  for (const std::string& d : docs) {
    auto ids = tok.Encode(d, /*add_special_tokens=*/false);
    if (!ids.ok()) {
      std::fprintf(stderr, "encode: %s\n", ids.status().ToString().c_str());
      return 1;
    }
    for (int32_t id : *ids) checksum = Fnv1a(checksum, id);
    tokens += ids->size();
  }
  const double pass = std::max(1e-6, Seconds(Clock::now() - t0));
  const int reps = std::max(1, static_cast<int>(absl::GetFlag(FLAGS_min_seconds) / pass) + 1);
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  const std::string label =
      absl::GetFlag(FLAGS_label).empty() ? absl::GetFlag(FLAGS_corpus) : absl::GetFlag(FLAGS_label);
  for (const int n : {1, threads}) {
    // n threads share reps * n passes over the corpus, a document at a time.
    const size_t total = docs.size() * static_cast<size_t>(reps) * n;
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    const Clock::time_point start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < n; ++t) {
      pool.emplace_back([&] {
        for (size_t i = next.fetch_add(1); i < total; i = next.fetch_add(1)) {
          if (!tok.Encode(docs[i % docs.size()], false).ok()) failed = true;
        }
      });
    }
    for (auto& th : pool) th.join();
    const double secs = Seconds(Clock::now() - start);
    if (failed) return 1;
    const double passes = static_cast<double>(reps) * n;
    std::printf(
        "impl=tessera corpus=%s docs=%zu bytes=%zu tokens=%zu checksum=%08x threads=%d "
        "MB/s=%.2f tokens/s=%.0f\n",
        label.c_str(), docs.size(), bytes, tokens, checksum, n, passes * bytes / secs / 1e6,
        passes * tokens / secs);
    std::fflush(stdout);
    if (n == threads) break;
  }
  return 0;
}
