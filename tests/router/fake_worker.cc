#include "tests/router/fake_worker.h"

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/check.h"
#include "grpcpp/health_check_service_interface.h"
#include "tests/router/fake_worker_services.h"
#include "tests/router/fake_worker_state.h"

namespace tessera::router::testing {

FakeWorker::FakeWorker(FakeWorkerOptions options)
    : options_(std::move(options)), state_(std::make_shared<State>(options_)) {
  const absl::Status s = Serve("127.0.0.1:0");
  TESSERA_CHECK(s.ok(), s.ToString());
  address_ = absl::StrCat("127.0.0.1:", port_);
}

FakeWorker::~FakeWorker() { Stop(); }

absl::Status FakeWorker::Serve(const std::string& listen) {
  std::unique_ptr<grpc::Service> worker_service = MakeFakeWorkerService(state_);
  std::unique_ptr<grpc::Service> llm_service = MakeFakeLlmService(state_);
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
