#include "tests/router/fake_worker_services.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tessera/v1/worker.grpc.pb.h"

namespace tessera::router::testing {
namespace {

class FakeWorkerService final : public v1::Worker::CallbackService {
 public:
  explicit FakeWorkerService(std::shared_ptr<FakeWorker::State> state) : state_(std::move(state)) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* /*ctx*/, const v1::GenerateRequest* request) override {
    FakeWorker::State* st = state_.get();
    std::shared_ptr<GenerateWriter> w = GenerateWriter::Create(
        [state = state_](GenerateWriter* self) { state->ForgetGenerate(self); });
    GenerateScript script;
    bool stopped;
    {
      absl::MutexLock lock(&st->mu);
      ++st->generate_calls;
      st->requests.push_back(*request);
      script = st->script;
      stopped = st->stopped;
      if (!stopped) st->generates.push_back(w);
    }
    if (stopped) {
      w->Abort(Stopped());
      return w.get();
    }
    const int prompt_tokens = request->has_token_ids() ? request->token_ids().ids_size()
                                                       : static_cast<int>(request->text().size());
    // The choices to run, each with the tokens the client has of it: all n
    // (choice 0 resuming after continuation.output_token_ids), or a
    // continuation's unfinished choices. Choice c sends tokens - c tokens
    // (at least 1; ids first_token_id + 100 c + i), its final message right
    // after its last token, choices interleaved step by step.
    const int n = std::max(1, request->sampling().n());
    std::vector<std::pair<int, int>> run;  // (index, tokens delivered)
    if (request->continuation().choices_size() > 0) {
      for (const v1::ContinuedChoice& c : request->continuation().choices()) {
        run.emplace_back(c.index(), c.output_token_ids_size());
      }
    } else {
      for (int c = 0; c < n; ++c) {
        run.emplace_back(c, c == 0 ? request->continuation().output_token_ids_size() : 0);
      }
    }
    std::vector<v1::GenerateResponse> messages;
    int token_messages = 0;
    for (int i = 0; i < script.tokens; ++i) {
      for (const auto& [c, from] : run) {
        const int tokens = std::max(1, script.tokens - c);
        if (i >= from && i < tokens) {
          v1::GenerateResponse& m = messages.emplace_back();
          m.set_request_id(request->request_id());
          m.set_index(c);
          m.add_token_ids(script.first_token_id + 100 * c + i);
          m.set_worker_id(st->options.worker_id);
          ++token_messages;
        }
        if (i == tokens - 1 && !script.hang) {
          v1::GenerateResponse& last = messages.emplace_back();
          last.set_request_id(request->request_id());
          last.set_index(c);
          last.set_worker_id(st->options.worker_id);
          last.set_finish_reason(v1::FINISH_REASON_LENGTH);
          last.mutable_usage()->set_prompt_tokens(prompt_tokens);
          last.mutable_usage()->set_completion_tokens(tokens);
        }
      }
    }

    const int total = static_cast<int>(messages.size());
    const bool fails = script.fail_after_messages >= 0 &&
                       script.fail_after_messages < (script.hang ? token_messages + 1 : total);
    const int send = fails ? script.fail_after_messages : total;
    for (int i = 0; i < send; ++i) w->Enqueue(std::move(messages[static_cast<size_t>(i)]));
    if (fails) {
      w->FinishAfterQueued(script.fail_status);
    } else if (!script.hang) {
      w->FinishAfterQueued(grpc::Status::OK);
    } else {
      w->Flush();  // then hold until cancelled or stopped
    }
    return w.get();
  }

  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* ctx,
                                    const v1::GetLoadRequest* /*request*/,
                                    v1::LoadReport* response) override {
    FakeWorker::State* st = state_.get();
    grpc::Status status;
    {
      absl::MutexLock lock(&st->mu);
      ++st->get_load_calls;
      if (st->stopped) {
        status = Stopped();
      } else if (st->get_load_hang) {
        std::shared_ptr<HangingUnary> r = HangingUnary::Create();
        st->hanging.push_back(r);
        return r.get();
      } else if (!st->get_load_status.ok()) {
        status = st->get_load_status;
      } else {
        *response = st->report;
        if (response->worker_id().empty()) response->set_worker_id(st->options.worker_id);
        if (response->block_size() == 0) response->set_block_size(st->options.block_size);
        if (response->model().empty()) response->set_model(st->options.model);
      }
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }

  grpc::ServerWriteReactor<v1::KvEventBatch>* WatchKvEvents(
      grpc::CallbackServerContext* /*ctx*/, const v1::WatchKvEventsRequest* /*request*/) override {
    FakeWorker::State* st = state_.get();
    std::shared_ptr<WatchWriter> w =
        WatchWriter::Create([state = state_](WatchWriter* self) { state->ForgetWatcher(self); });
    bool stopped;
    {
      absl::MutexLock lock(&st->mu);
      ++st->watch_calls;
      stopped = st->stopped;
      if (!stopped) {
        v1::KvEventBatch snapshot;
        snapshot.set_snapshot(true);
        snapshot.set_sequence_number(0);
        snapshot.set_block_size(st->options.block_size);
        v1::KvEvent* stored = snapshot.add_events();
        stored->set_kind(v1::KvEvent::KIND_STORED);
        std::vector<uint64_t> hashes(st->cached.begin(), st->cached.end());
        std::sort(hashes.begin(), hashes.end());
        stored->mutable_block_hashes()->Add(hashes.begin(), hashes.end());
        w->Enqueue(std::move(snapshot));
        st->watchers.push_back(FakeWorker::State::Watcher{w, 1, 0});
      }
    }
    if (stopped) {
      w->Abort(Stopped());
    } else {
      w->Flush();
    }
    return w.get();
  }

  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* ctx,
                                  const v1::DrainRequest* /*request*/,
                                  v1::DrainResponse* response) override {
    FakeWorker::State* st = state_.get();
    {
      absl::MutexLock lock(&st->mu);
      ++st->drain_calls;
      st->report.set_draining(true);
      int live = 0;
      for (const auto& g : st->generates) live += g.lock() != nullptr ? 1 : 0;
      response->set_in_flight(live);
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const std::shared_ptr<FakeWorker::State> state_;
};

class FakeLlmService final : public v1::Llm::CallbackService {
 public:
  explicit FakeLlmService(std::shared_ptr<FakeWorker::State> state) : state_(std::move(state)) {}

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const v1::ListModelsRequest* /*request*/,
                                       v1::ListModelsResponse* response) override {
    v1::ModelInfo* m = response->add_models();
    m->set_id(state_->options.model);
    m->set_max_model_len(state_->options.max_model_len);
    m->set_vocab_size(state_->options.vocab_size);
    m->set_max_n(state_->options.max_n);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const std::shared_ptr<FakeWorker::State> state_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeFakeWorkerService(std::shared_ptr<FakeWorker::State> state) {
  return std::make_unique<FakeWorkerService>(std::move(state));
}

std::unique_ptr<grpc::Service> MakeFakeLlmService(std::shared_ptr<FakeWorker::State> state) {
  return std::make_unique<FakeLlmService>(std::move(state));
}

}  // namespace tessera::router::testing
