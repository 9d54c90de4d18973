// The server-side reactors the fake worker (tests/router/fake_worker.h) uses:
// a queued server-streaming writer and a unary call that never answers.
// Test-only; every reactor keeps itself alive until OnDone.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"

namespace tessera::router::testing {

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

}  // namespace tessera::router::testing
