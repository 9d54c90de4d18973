#include "tests/router/fake_worker.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/check.h"
#include "grpcpp/health_check_service_interface.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tessera/v1/worker.grpc.pb.h"

namespace tessera::router::testing {
namespace {

grpc::Status Stopped() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake worker stopped");
}

// A server-streaming reactor that writes queued messages one at a time, then
// finishes with the status it was given. Keeps itself alive until OnDone; the
// decisions are made under its lock, the gRPC calls after it (reactions may
// run inline).
template <typename T>
class QueuedWriter : public grpc::ServerWriteReactor<T> {
 public:
  static std::shared_ptr<QueuedWriter> Create(std::function<void(QueuedWriter*)> on_done) {
    std::shared_ptr<QueuedWriter> w(new QueuedWriter(std::move(on_done)));
    w->self_ = w;
    return w;
  }

  void Enqueue(T message) {  // call Flush() afterwards, with no other lock held
    absl::MutexLock lock(&mu_);
    if (!finished_ && !finish_.has_value()) queue_.push_back(std::move(message));
  }
  // Finish with `status` once the queued messages are written.
  void FinishAfterQueued(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (!finish_.has_value()) finish_ = std::move(status);
    }
    Flush();
  }
  // Drop what is queued and finish with `status` as soon as possible.
  void Abort(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      queue_.clear();
      finish_ = std::move(status);
    }
    Flush();
  }
  bool done() const {
    absl::MutexLock lock(&mu_);
    return done_;
  }

  void Flush() {
    enum { kNothing, kWrite, kFinish } action = kNothing;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_) return;
      if (!queue_.empty()) {
        current_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        action = kWrite;
      } else if (finish_.has_value()) {
        finished_ = true;
        status = *finish_;
        action = kFinish;
      }
    }
    if (action == kWrite) this->StartWrite(&current_);
    if (action == kFinish) this->Finish(status);
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {  // the client is gone
        queue_.clear();
        finish_ = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
      }
    }
    Flush();
  }
  void OnCancel() override { Abort(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")); }
  void OnDone() override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    on_done_(this);
    std::shared_ptr<QueuedWriter> self = std::move(self_);  // may delete this on return
  }

 private:
  explicit QueuedWriter(std::function<void(QueuedWriter*)> on_done)
      : on_done_(std::move(on_done)) {}

  const std::function<void(QueuedWriter*)> on_done_;
  mutable absl::Mutex mu_;
  std::deque<T> queue_ ABSL_GUARDED_BY(mu_);
  T current_;  // the write in flight
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<QueuedWriter> self_;
};

// A unary call that does not answer until cancelled or aborted.
class HangingUnary : public grpc::ServerUnaryReactor {
 public:
  static std::shared_ptr<HangingUnary> Create() {
    std::shared_ptr<HangingUnary> r(new HangingUnary());
    r->self_ = r;
    return r;
  }
  void Abort(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(std::move(status));
  }
  void OnCancel() override { Abort(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")); }
  void OnDone() override { std::shared_ptr<HangingUnary> self = std::move(self_); }

 private:
  HangingUnary() = default;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<HangingUnary> self_;
};

using GenerateWriter = QueuedWriter<v1::GenerateResponse>;
using WatchWriter = QueuedWriter<v1::KvEventBatch>;

}  // namespace

struct FakeWorker::State {
  struct Watcher {
    std::weak_ptr<WatchWriter> writer;
    uint64_t next_sequence = 1;  // 0 was the snapshot
    uint64_t skip = 0;
  };

  explicit State(FakeWorkerOptions o) : options(std::move(o)) {}

  const FakeWorkerOptions options;
  mutable absl::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = true;
  v1::LoadReport report ABSL_GUARDED_BY(mu);
  grpc::Status get_load_status ABSL_GUARDED_BY(mu);
  bool get_load_hang ABSL_GUARDED_BY(mu) = false;
  GenerateScript script ABSL_GUARDED_BY(mu);
  absl::flat_hash_set<uint64_t> cached ABSL_GUARDED_BY(mu);
  std::vector<Watcher> watchers ABSL_GUARDED_BY(mu);
  std::vector<std::weak_ptr<GenerateWriter>> generates ABSL_GUARDED_BY(mu);
  std::vector<std::weak_ptr<HangingUnary>> hanging ABSL_GUARDED_BY(mu);
  std::vector<v1::GenerateRequest> requests ABSL_GUARDED_BY(mu);
  int64_t generate_calls ABSL_GUARDED_BY(mu) = 0;
  int64_t get_load_calls ABSL_GUARDED_BY(mu) = 0;
  int64_t watch_calls ABSL_GUARDED_BY(mu) = 0;
  int64_t drain_calls ABSL_GUARDED_BY(mu) = 0;

  // The server (re)built by Serve; services outlive it.
  std::unique_ptr<grpc::Server> server ABSL_GUARDED_BY(mu);
  std::unique_ptr<grpc::Service> worker_service ABSL_GUARDED_BY(mu);
  std::unique_ptr<grpc::Service> llm_service ABSL_GUARDED_BY(mu);

  void ForgetGenerate(GenerateWriter* w) {
    absl::MutexLock lock(&mu);
    std::erase_if(generates, [w](const std::weak_ptr<GenerateWriter>& p) {
      auto s = p.lock();
      return s == nullptr || s.get() == w;
    });
  }
  void ForgetWatcher(WatchWriter* w) {
    absl::MutexLock lock(&mu);
    std::erase_if(watchers, [w](const Watcher& x) {
      auto s = x.writer.lock();
      return s == nullptr || s.get() == w;
    });
  }
};

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
    std::vector<v1::GenerateResponse> messages;
    // A continuation resumes after the tokens the client has, as a worker does.
    for (int i = request->continuation().output_token_ids_size(); i < script.tokens; ++i) {
      v1::GenerateResponse& m = messages.emplace_back();
      m.set_request_id(request->request_id());
      m.add_token_ids(script.first_token_id + i);
      m.set_worker_id(st->options.worker_id);
    }
    v1::GenerateResponse& last = messages.emplace_back();
    last.set_request_id(request->request_id());
    last.set_worker_id(st->options.worker_id);
    last.set_finish_reason(v1::FINISH_REASON_LENGTH);
    last.mutable_usage()->set_prompt_tokens(prompt_tokens);
    last.mutable_usage()->set_completion_tokens(script.tokens);

    const int total = static_cast<int>(messages.size());
    const bool fails = script.fail_after_messages >= 0 &&
                       script.fail_after_messages < (script.hang ? script.tokens + 1 : total);
    const int send = fails ? script.fail_after_messages : (script.hang ? script.tokens : total);
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

FakeWorker::FakeWorker(FakeWorkerOptions options)
    : options_(std::move(options)), state_(std::make_shared<State>(options_)) {
  const absl::Status s = Serve("127.0.0.1:0");
  TESSERA_CHECK(s.ok(), s.ToString());
  address_ = absl::StrCat("127.0.0.1:", port_);
}

FakeWorker::~FakeWorker() { Stop(); }

absl::Status FakeWorker::Serve(const std::string& listen) {
  auto worker_service = std::make_unique<FakeWorkerService>(state_);
  auto llm_service = std::make_unique<FakeLlmService>(state_);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(worker_service.get());
  builder.RegisterService(llm_service.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("fake worker: cannot listen on ", listen));
  }
  if (grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService()) {
    health->SetServingStatus(true);
  }
  absl::MutexLock lock(&state_->mu);
  port_ = port;
  state_->server = std::move(server);
  state_->worker_service = std::move(worker_service);
  state_->llm_service = std::move(llm_service);
  state_->stopped = false;
  return absl::OkStatus();
}

absl::Status FakeWorker::Restart() {
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->server != nullptr) return absl::OkStatus();
  }
  return Serve(address_);
}

void FakeWorker::Stop() {
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<grpc::Service> worker_service, llm_service;
  std::vector<std::shared_ptr<GenerateWriter>> generates;
  std::vector<std::shared_ptr<WatchWriter>> watchers;
  std::vector<std::shared_ptr<HangingUnary>> hanging;
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->server == nullptr) return;
    state_->stopped = true;
    server = std::move(state_->server);
    worker_service = std::move(state_->worker_service);
    llm_service = std::move(state_->llm_service);
    for (const auto& g : state_->generates) {
      if (auto p = g.lock()) generates.push_back(std::move(p));
    }
    for (const auto& w : state_->watchers) {
      if (auto p = w.writer.lock()) watchers.push_back(std::move(p));
    }
    for (const auto& h : state_->hanging) {
      if (auto p = h.lock()) hanging.push_back(std::move(p));
    }
    state_->hanging.clear();
  }
  if (grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  // As if the process died: every open call ends with UNAVAILABLE.
  for (const auto& g : generates) g->Abort(Stopped());
  for (const auto& w : watchers) w->Abort(Stopped());
  for (const auto& h : hanging) h->Abort(Stopped());
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  server.reset();  // before the services it uses
}

bool FakeWorker::running() const {
  absl::MutexLock lock(&state_->mu);
  return state_->server != nullptr;
}

void FakeWorker::SetLoad(v1::LoadReport report) {
  absl::MutexLock lock(&state_->mu);
  state_->report = std::move(report);
}

void FakeWorker::SetGetLoadStatus(grpc::Status status) {
  absl::MutexLock lock(&state_->mu);
  state_->get_load_status = std::move(status);
}

void FakeWorker::SetGetLoadHang(bool hang) {
  absl::MutexLock lock(&state_->mu);
  state_->get_load_hang = hang;
}

void FakeWorker::SetGenerateScript(GenerateScript script) {
  absl::MutexLock lock(&state_->mu);
  state_->script = std::move(script);
}

void FakeWorker::PushKvEvents(v1::KvEventBatch batch) {
  std::vector<std::shared_ptr<WatchWriter>> to_flush;
  {
    absl::MutexLock lock(&state_->mu);
    for (const v1::KvEvent& e : batch.events()) {
      for (uint64_t h : e.block_hashes()) {
        if (e.kind() == v1::KvEvent::KIND_STORED) state_->cached.insert(h);
        if (e.kind() == v1::KvEvent::KIND_EVICTED) state_->cached.erase(h);
      }
    }
    batch.set_snapshot(false);
    batch.set_block_size(options_.block_size);
    for (State::Watcher& w : state_->watchers) {
      std::shared_ptr<WatchWriter> writer = w.writer.lock();
      if (writer == nullptr) continue;
      w.next_sequence += w.skip;
      w.skip = 0;
      batch.set_sequence_number(w.next_sequence++);
      writer->Enqueue(batch);  // under the state lock: every watcher sees push order
      to_flush.push_back(std::move(writer));
    }
  }
  for (const auto& w : to_flush) w->Flush();
}

void FakeWorker::SkipKvSequenceNumbers(uint64_t n) {
  absl::MutexLock lock(&state_->mu);
  for (State::Watcher& w : state_->watchers) w.skip += n;
}

int64_t FakeWorker::generate_calls() const {
  absl::MutexLock lock(&state_->mu);
  return state_->generate_calls;
}

int64_t FakeWorker::get_load_calls() const {
  absl::MutexLock lock(&state_->mu);
  return state_->get_load_calls;
}

int64_t FakeWorker::watch_calls() const {
  absl::MutexLock lock(&state_->mu);
  return state_->watch_calls;
}

int64_t FakeWorker::drain_calls() const {
  absl::MutexLock lock(&state_->mu);
  return state_->drain_calls;
}

int FakeWorker::kv_watchers() const {
  absl::MutexLock lock(&state_->mu);
  int n = 0;
  for (const auto& w : state_->watchers) {
    auto p = w.writer.lock();
    n += p != nullptr && !p->done() ? 1 : 0;
  }
  return n;
}

int FakeWorker::active_generates() const {
  absl::MutexLock lock(&state_->mu);
  int n = 0;
  for (const auto& g : state_->generates) {
    auto p = g.lock();
    n += p != nullptr && !p->done() ? 1 : 0;
  }
  return n;
}

std::vector<v1::GenerateRequest> FakeWorker::generate_requests() const {
  absl::MutexLock lock(&state_->mu);
  return state_->requests;
}

std::optional<v1::GenerateRequest> FakeWorker::last_request() const {
  absl::MutexLock lock(&state_->mu);
  if (state_->requests.empty()) return std::nullopt;
  return state_->requests.back();
}

}  // namespace tessera::router::testing
