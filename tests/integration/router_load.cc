#include "tests/integration/router_load.h"

#include <algorithm>
#include <cctype>
#include <random>

#include "gtest/gtest.h"

namespace tessera::testing {

CallRecord RunLlmGenerate(tessera::v1::Llm::Stub& stub, const tessera::v1::GenerateRequest& request,
                          const CallOptions& options) {
  CallRecord r;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + options.deadline);
  if (!options.api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + options.api_key);
  r.start = std::chrono::steady_clock::now();
  std::unique_ptr<grpc::ClientReader<tessera::v1::GenerateResponse>> reader =
      stub.Generate(&ctx, request);
  tessera::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    ++r.messages;
    if (r.finished) ++r.messages_after_finish;
    if (options.on_message) options.on_message(msg);
    if (!r.first_token && msg.token_ids_size() > 0)
      r.first_token = std::chrono::steady_clock::now();
    r.tokens.insert(r.tokens.end(), msg.token_ids().begin(), msg.token_ids().end());
    if (r.worker_id.empty()) r.worker_id = msg.worker_id();
    if (msg.finish_reason() != tessera::v1::FINISH_REASON_UNSPECIFIED && !r.finished) {
      r.finished = true;
      r.finish_reason = msg.finish_reason();
      r.usage = msg.usage();
    }
  }
  r.status = reader->Finish();
  r.end = std::chrono::steady_clock::now();
  return r;
}

LoadDriver::LoadDriver(tessera::v1::Llm::Stub& stub, int concurrency, MakeRequest make,
                       CallOptions options)
    : stub_(stub), make_(std::move(make)), options_(std::move(options)) {
  for (int i = 0; i < concurrency; ++i) threads_.emplace_back([this] { Run(); });
}

LoadDriver::~LoadDriver() {
  Stop();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void LoadDriver::Run() {
  while (!stop_.load()) {
    const int index = next_index_.fetch_add(1);
    std::optional<tessera::v1::GenerateRequest> request = make_(index);
    if (!request) return;
    CallOptions options = options_;
    int tokens = 0;
    options.on_message = [&](const tessera::v1::GenerateResponse& msg) {
      if (msg.token_ids_size() > 0) {
        tokens += msg.token_ids_size();
        absl::MutexLock lock(&mu_);
        auto& entry = streaming_[index];
        if (entry.first.empty()) entry.first = msg.worker_id();
        entry.second = tokens;
      }
      if (options_.on_message) options_.on_message(msg);
    };
    CallRecord r = RunLlmGenerate(stub_, *request, options);
    r.index = index;
    absl::MutexLock lock(&mu_);
    streaming_.erase(index);
    if (!r.ok()) ++failed_;
    records_.push_back(std::move(r));
  }
}

void LoadDriver::Stop() { stop_.store(true); }

std::vector<CallRecord> LoadDriver::StopAndJoin() {
  Stop();
  return Join();
}

std::vector<CallRecord> LoadDriver::Join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  absl::MutexLock lock(&mu_);
  std::vector<CallRecord> out = std::move(records_);
  records_.clear();
  std::sort(out.begin(), out.end(),
            [](const CallRecord& a, const CallRecord& b) { return a.index < b.index; });
  return out;
}

int LoadDriver::completed() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(records_.size());
}

int LoadDriver::failed() const {
  absl::MutexLock lock(&mu_);
  return failed_;
}

bool LoadDriver::WaitCompleted(int n, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (completed() < n) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

int LoadDriver::StreamingFrom(const std::string& worker_id, int max_tokens) const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [index, progress] : streaming_) {
    if (progress.first == worker_id && progress.second <= max_tokens) ++n;
  }
  return n;
}

std::vector<CallRecord> LoadDriver::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return records_;
}

tessera::v1::GenerateRequest GreedyLlmRequest(const std::vector<int32_t>& prompt, int max_tokens,
                                              const std::string& request_id) {
  tessera::v1::GenerateRequest req;
  req.set_request_id(request_id);
  for (int32_t id : prompt) req.mutable_token_ids()->add_ids(id);
  req.mutable_sampling()->set_max_tokens(max_tokens);
  req.mutable_sampling()->set_temperature(0.0f);
  req.mutable_sampling()->set_ignore_eos(true);
  return req;
}

std::string DescribeFailures(const std::vector<CallRecord>& records, size_t max_listed) {
  std::string out;
  size_t failed = 0;
  for (const CallRecord& r : records) {
    if (r.ok()) continue;
    if (++failed <= max_listed) {
      out += "\n  call " + std::to_string(r.index) + " (worker '" + r.worker_id + "', " +
             std::to_string(r.tokens.size()) + " tokens): status " +
             std::to_string(static_cast<int>(r.status.error_code())) + ": " +
             r.status.error_message();
    }
  }
  if (failed == 0) return "";
  return std::to_string(failed) + " of " + std::to_string(records.size()) + " calls failed:" + out;
}

std::vector<int32_t> VariedPrompt(uint64_t seed, int index, int len) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(index)};
  std::mt19937 rng(seq);
  std::uniform_int_distribution<int32_t> id(3, 511);
  std::vector<int32_t> prompt = {1};
  while (static_cast<int>(prompt.size()) < len) prompt.push_back(id(rng));
  return prompt;
}

void ExpectCompleteCall(const CallRecord& r, size_t prompt_len, int max_tokens,
                        const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_TRUE(r.ok()) << "status " << static_cast<int>(r.status.error_code()) << ": "
                      << r.status.error_message() << " (worker '" << r.worker_id << "', "
                      << r.tokens.size() << " tokens)";
  ASSERT_TRUE(r.finished) << "the stream ended without a message carrying a finish_reason";
  EXPECT_EQ(r.messages_after_finish, 0);
  EXPECT_EQ(r.finish_reason, tessera::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(r.tokens.size(), static_cast<size_t>(max_tokens));
  EXPECT_EQ(r.usage.completion_tokens(), max_tokens);
  EXPECT_EQ(r.usage.prompt_tokens(), static_cast<int>(prompt_len));
}

bool MentionsNumber(const std::string& text, int64_t n) {
  const std::string digits = std::to_string(n);
  for (size_t pos = text.find(digits); pos != std::string::npos; pos = text.find(digits, pos + 1)) {
    const bool digit_before = pos > 0 && std::isdigit(static_cast<unsigned char>(text[pos - 1]));
    const size_t after = pos + digits.size();
    const bool digit_after =
        after < text.size() && std::isdigit(static_cast<unsigned char>(text[after]));
    if (!digit_before && !digit_after) return true;
  }
  return false;
}

}  // namespace tessera::testing
