// One WatchKvEvents stream from a worker, as a gRPC client reactor (callback
// API: no thread of its own). It checks the stream's protocol — the first
// batch is a snapshot, then sequence numbers go up by exactly one — and hands
// each batch to `on_batch`, in order, one at a time.
//
// The stream ends when the worker ends it, on a protocol break (status
// DATA_LOSS, e.g. a sequence gap: batches were lost, so the receiver's view is
// unknown until a fresh snapshot), when `on_batch` returns false (CANCELLED),
// or on Cancel(). `on_done` is then called exactly once, after the last
// `on_batch`; the owner decides whether and when to reconnect (a new stream).
//
// Thread-safe: Cancel() may be called from any thread at any time; callbacks
// run on gRPC threads and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/worker.grpc.pb.h"

namespace tessera::router {

class KvWatchStream : public grpc::ClientReadReactor<v1::KvEventBatch>,
                      public std::enable_shared_from_this<KvWatchStream> {
 public:
  struct Callbacks {
    // A batch that passed the protocol checks. False ends the stream.
    std::function<bool(const v1::KvEventBatch& batch)> on_batch;
    // The stream is over: `status` is the worker's final status (OK when it
    // ended the stream normally), DATA_LOSS for a protocol break, or
    // CANCELLED after Cancel() / on_batch returning false. `got_snapshot`:
    // whether a snapshot was received (the stream was established).
    std::function<void(const absl::Status& status, bool got_snapshot)> on_done;
  };

  explicit KvWatchStream(Callbacks callbacks);
  ~KvWatchStream() override = default;

  // Opens the stream on `stub` (which must outlive it). Call once. The
  // stream keeps itself alive until on_done has returned.
  void Start(v1::Worker::Stub* stub);
  // Ends the stream soon (on_done follows with CANCELLED unless it already
  // ended). Safe before Start (the call is then cancelled as it starts).
  void Cancel();

  // grpc::ClientReadReactor
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void Fail(absl::Status status);  // reader-side protocol error: cancel the call

  // Declared before the context, so destroyed after it: the owner's
  // callbacks may hold the last reference to the channel, which the context
  // also holds (WorkerPool's Op relies on this order).
  const Callbacks callbacks_;
  grpc::ClientContext context_;
  v1::WatchKvEventsRequest request_;
  v1::KvEventBatch batch_;
  // Touched only by the reactions, which gRPC runs one at a time.
  bool got_snapshot_ = false;
  uint64_t next_sequence_ = 0;
  absl::Status error_;
  std::shared_ptr<KvWatchStream> self_;  // set by Start, dropped after on_done
};

}  // namespace tessera::router
