#include "bench/recording.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace tessera::bench {

absl::StatusOr<std::unique_ptr<Recorder>> Recorder::Open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("--record: cannot write ", path));
  return std::unique_ptr<Recorder>(new Recorder(path, f));
}

Recorder::~Recorder() {
  if (f_ != nullptr) std::fclose(f_);
}

void Recorder::Write(const Planned& plan, const CallRecord& record,
                     const std::vector<int32_t>& output) {
  nlohmann::json line = {{"index", plan.index},
                         {"request_id", plan.request_id},
                         {"prompt", plan.prompt},
                         {"max_tokens", plan.max_tokens},
                         {"temperature", plan.temperature},
                         {"seed", plan.seed},
                         {"failure", record.ok() ? "" : record.failure},
                         {"error", record.error},
                         {"done_unix_s", absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch())},
                         {"tokens", output}};
  const std::string text = line.dump() + "\n";
  if (std::fwrite(text.data(), 1, text.size(), f_) != text.size()) write_failed_ = true;
}

absl::Status Recorder::Close() {
  const bool close_failed = std::fclose(f_) != 0;
  f_ = nullptr;
  if (write_failed_ || close_failed) {
    return absl::DataLossError(absl::StrCat("--record: writing ", path_, " failed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Recording> ReadRecording(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--replay: cannot read ", path));
  Recording r;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.empty()) continue;
    try {
      const nlohmann::json j = nlohmann::json::parse(text);
      if (!j.at("failure").get<std::string>().empty()) {
        ++r.skipped;
        continue;
      }
      Planned p;
      p.index = j.at("index").get<int64_t>();
      p.request_id = j.at("request_id").get<std::string>() + "-replay";
      p.prompt = j.at("prompt").get<std::vector<int32_t>>();
      p.max_tokens = j.at("max_tokens").get<int>();
      p.temperature = j.at("temperature").get<float>();
      p.seed = j.at("seed").get<uint64_t>();
      if (!r.outputs.emplace(p.index, j.at("tokens").get<std::vector<int32_t>>()).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line, ": call index ", p.index, " appears twice"));
      }
      r.calls.push_back(std::move(p));
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": ", e.what()));
    }
  }
  return r;
}

void ReplayCheck::Add(const Planned& plan, const CallRecord& record,
                      const std::vector<int32_t>& output) {
  if (!record.ok()) {
    ++failed_;
    return;
  }
  const std::vector<int32_t>& want = recorded_.at(plan.index);
  if (output == want) {
    ++same_;
    return;
  }
  const auto [a, b] = std::mismatch(want.begin(), want.end(), output.begin(), output.end());
  differences_.push_back(absl::StrCat(
      "call ", plan.index, " (", plan.request_id, "): recorded ", want.size(), " tokens, replayed ",
      output.size(), "; first difference at token ", a - want.begin(), ": recorded ",
      a == want.end() ? std::string("(end)") : absl::StrCat(*a), ", replayed ",
      b == output.end() ? std::string("(end)") : absl::StrCat(*b)));
}

bool ReplayCheck::Print(std::FILE* out) const {
  const int64_t differ = static_cast<int64_t>(differences_.size());
  std::fprintf(out, "replay: %lld calls compared: %lld identical, %lld differ, %lld failed\n",
               static_cast<long long>(same_ + differ + failed_), static_cast<long long>(same_),
               static_cast<long long>(differ), static_cast<long long>(failed_));
  for (size_t i = 0; i < differences_.size() && i < 10; ++i) {
    std::fprintf(out, "  %s\n", differences_[i].c_str());
  }
  return differ == 0 && failed_ == 0;
}

}  // namespace tessera::bench
