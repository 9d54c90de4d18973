#include "tests/integration/stream.h"

namespace tessera::testing {

StreamResult RunGenerate(tessera::v1::Worker::Stub& stub,
                         const tessera::v1::GenerateRequest& request,
                         const StreamOptions& options) {
  StreamResult r;
  grpc::ClientContext ctx;
  const auto start = std::chrono::steady_clock::now();
  ctx.set_deadline(std::chrono::system_clock::now() + options.deadline);
  std::unique_ptr<grpc::ClientReader<tessera::v1::GenerateResponse>> reader =
      stub.Generate(&ctx, request);
  if (options.on_start) options.on_start(&ctx);
  if (options.cancel_after_tokens == 0) {
    ctx.TryCancel();
    r.cancelled = true;
  }
  tessera::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    ++r.messages;
    if (r.finished) ++r.messages_after_finish;
    if (r.tokens.empty() && msg.token_ids_size() > 0) {
      r.first_token_latency = std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - start);
    }
    r.tokens.insert(r.tokens.end(), msg.token_ids().begin(), msg.token_ids().end());
    if (msg.finish_reason() != tessera::v1::FINISH_REASON_UNSPECIFIED && !r.finished) {
      r.finished = true;
      r.final_message = msg;
    }
    if (options.on_message) options.on_message(msg);
    if (!r.cancelled && options.cancel_after_tokens > 0 &&
        static_cast<int>(r.tokens.size()) >= options.cancel_after_tokens) {
      ctx.TryCancel();
      r.cancelled = true;
    }
  }
  r.status = reader->Finish();
  if (options.on_end) options.on_end(&ctx);
  return r;
}

StreamGroup::StreamGroup(tessera::v1::Worker::Stub& stub,
                         std::vector<tessera::v1::GenerateRequest> requests,
                         const StreamOptions& options)
    : results_(requests.size()) {
  for (size_t i = 0; i < requests.size(); ++i) {
    threads_.emplace_back([this, &stub, options, i, request = std::move(requests[i])] {
      StreamOptions mine = options;
      bool counted = false;
      mine.on_message = [&](const tessera::v1::GenerateResponse& msg) {
        if (!counted && msg.token_ids_size() > 0) {
          counted = true;
          streaming_.fetch_add(1);
        }
        if (options.on_message) options.on_message(msg);
      };
      results_[i] = RunGenerate(stub, request, mine);
    });
  }
}

StreamGroup::~StreamGroup() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

bool StreamGroup::WaitAllStreaming(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (streaming_.load() < static_cast<int>(results_.size())) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::vector<StreamResult> StreamGroup::Join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  return std::move(results_);
}

tessera::v1::GenerateRequest GreedyRequest(const std::vector<int32_t>& prompt, int max_tokens,
                                           const std::string& request_id) {
  tessera::v1::GenerateRequest req;
  req.set_request_id(request_id);
  for (int32_t id : prompt) req.mutable_token_ids()->add_ids(id);
  req.mutable_sampling()->set_max_tokens(max_tokens);
  req.mutable_sampling()->set_temperature(0.0f);
  req.mutable_sampling()->set_ignore_eos(true);
  return req;
}

std::string Describe(const grpc::Status& status) {
  return "status " + std::to_string(static_cast<int>(status.error_code())) + ": " +
         status.error_message();
}

}  // namespace tessera::testing
