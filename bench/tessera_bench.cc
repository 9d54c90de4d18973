// tessera-bench: a load generator over gRPC. Keeps --concurrency streaming
// Generate calls busy (one thread each, a synchronous stream per call) until
// --requests calls have run, each with a distinct random prompt of
// --prompt-len token ids, greedy, ignore_eos, --max-tokens outputs; then
// prints throughput and latency figures:
//
//   tessera-bench --target HOST:PORT --concurrency N --requests M
//                 --prompt-len L --max-tokens T [--service worker|llm] [--seed S]
//
// TTFT is measured from the call's start to the first message carrying
// tokens; inter-token latency is the gap between messages divided by the
// tokens the later one carries. Exits 1 when any call failed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "common/cli.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tessera/v1/worker.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Server address HOST:PORT");
ABSL_FLAG(int, concurrency, 8, "Streaming calls in flight at once");
ABSL_FLAG(int, requests, 64, "Calls in total");
ABSL_FLAG(int, prompt_len, 32, "Prompt length in tokens");
ABSL_FLAG(int, max_tokens, 64, "Output tokens per call (ignore_eos, so exactly this many)");
ABSL_FLAG(std::string, service, "worker", "worker (tessera.v1.Worker) or llm (tessera.v1.Llm)");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the random prompts");
ABSL_FLAG(int, vocab_size, 500, "Prompt token ids are drawn from [3, vocab_size)");
ABSL_FLAG(int, timeout, 600, "Deadline of each call in seconds");

namespace tessera {
namespace {

using Clock = std::chrono::steady_clock;

struct CallStats {
  bool ok = false;
  std::string error;
  int64_t output_tokens = 0;
  double ttft_ms = 0;
  std::vector<double> itl_ms;  // one entry per token after the first message
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t index = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[index];
}

v1::GenerateRequest MakeRequest(int index) {
  std::mt19937_64 rng(absl::GetFlag(FLAGS_seed) * 1000003 + static_cast<uint64_t>(index));
  std::uniform_int_distribution<int32_t> id(3, std::max(4, absl::GetFlag(FLAGS_vocab_size)) - 1);
  v1::GenerateRequest req;
  req.set_request_id("bench-" + std::to_string(index));
  for (int i = 0; i < absl::GetFlag(FLAGS_prompt_len); ++i)
    req.mutable_token_ids()->add_ids(id(rng));
  auto* s = req.mutable_sampling();
  s->set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  s->set_temperature(0.0f);
  s->set_ignore_eos(true);
  return req;
}

// Runs one streaming call through whichever service was asked for.
CallStats RunCall(v1::Worker::Stub* worker, v1::Llm::Stub* llm, const v1::GenerateRequest& req) {
  CallStats st;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(absl::GetFlag(FLAGS_timeout)));
  const auto start = Clock::now();
  auto reader = worker != nullptr ? worker->Generate(&ctx, req) : llm->Generate(&ctx, req);
  v1::GenerateResponse msg;
  auto last = start;
  bool finished = false;
  while (reader->Read(&msg)) {
    const auto now = Clock::now();
    const int n = msg.token_ids_size();
    if (n > 0) {
      const double gap_ms = std::chrono::duration<double, std::milli>(now - last).count();
      if (st.output_tokens == 0) {
        st.ttft_ms = gap_ms;
      } else {
        for (int i = 0; i < n; ++i) st.itl_ms.push_back(gap_ms / n);
      }
      st.output_tokens += n;
      last = now;
    }
    if (msg.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) finished = true;
  }
  const grpc::Status status = reader->Finish();
  st.ok = status.ok() && finished;
  if (!status.ok()) {
    st.error = "status " + std::to_string(status.error_code()) + ": " + status.error_message();
  } else if (!finished) {
    st.error = "stream ended without a finish_reason";
  }
  return st;
}

int Run() {
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string service = absl::GetFlag(FLAGS_service);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const int requests = absl::GetFlag(FLAGS_requests);
  if (service != "worker" && service != "llm") {
    std::fprintf(stderr, "tessera-bench: --service must be worker or llm, got %s\n",
                 service.c_str());
    return 2;
  }
  if (concurrency < 1 || requests < 1 || absl::GetFlag(FLAGS_prompt_len) < 1 ||
      absl::GetFlag(FLAGS_max_tokens) < 1) {
    std::fprintf(stderr,
                 "tessera-bench: --concurrency, --requests, --prompt-len and --max-tokens must "
                 "be positive\n");
    return 2;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  // One channel per concurrent stream would spread HTTP/2 work over more
  // connections; one channel keeps the measurement close to a router's.
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30))) {
    std::fprintf(stderr, "tessera-bench: cannot connect to %s within 30 s\n", target.c_str());
    return 1;
  }
  std::unique_ptr<v1::Worker::Stub> worker;
  std::unique_ptr<v1::Llm::Stub> llm;
  if (service == "worker") {
    worker = v1::Worker::NewStub(channel);
  } else {
    llm = v1::Llm::NewStub(channel);
  }
  std::vector<v1::GenerateRequest> reqs;
  for (int i = 0; i < requests; ++i) reqs.push_back(MakeRequest(i));

  std::vector<CallStats> stats(requests);
  std::atomic<int> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < std::min(concurrency, requests); ++t) {
    threads.emplace_back([&] {
      for (int i = next.fetch_add(1); i < requests; i = next.fetch_add(1)) {
        stats[i] = RunCall(worker.get(), llm.get(), reqs[i]);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double wall_s = std::chrono::duration<double>(Clock::now() - start).count();

  int failed = 0;
  int64_t output_tokens = 0;
  std::vector<double> ttft, itl;
  for (const CallStats& s : stats) {
    output_tokens += s.output_tokens;
    if (!s.ok) {
      if (failed < 5) std::fprintf(stderr, "tessera-bench: a call failed: %s\n", s.error.c_str());
      ++failed;
      continue;
    }
    ttft.push_back(s.ttft_ms);
    itl.insert(itl.end(), s.itl_ms.begin(), s.itl_ms.end());
  }
  std::printf("target: %s (%s), concurrency %d, prompt %d tokens, max_tokens %d\n", target.c_str(),
              service.c_str(), concurrency, absl::GetFlag(FLAGS_prompt_len),
              absl::GetFlag(FLAGS_max_tokens));
  std::printf("requests: %d (%d failed)\n", requests, failed);
  std::printf("output tokens: %lld\n", static_cast<long long>(output_tokens));
  std::printf("wall time: %.3f s\n", wall_s);
  std::printf("output tokens/s: %.1f\n", wall_s > 0 ? output_tokens / wall_s : 0.0);
  std::printf("TTFT p50/p99: %.1f / %.1f ms\n", Percentile(ttft, 0.5), Percentile(ttft, 0.99));
  std::printf("inter-token latency p50/p99: %.2f / %.2f ms\n", Percentile(itl, 0.5),
              Percentile(itl, 0.99));
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  tessera::ParseCommandLine(
      argc, argv,
      "tessera-bench: gRPC load generator.\n"
      "  tessera-bench --target HOST:PORT --concurrency N --requests M --prompt-len L "
      "--max-tokens T [--service worker|llm] [--seed S]");
  return tessera::Run();
}
