#include "router/kv_watch.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::router {

KvWatchStream::KvWatchStream(Callbacks callbacks) : callbacks_(std::move(callbacks)) {}

void KvWatchStream::Start(v1::Worker::Stub* stub) {
  self_ = shared_from_this();
  stub->async()->WatchKvEvents(&context_, &request_, this);
  StartRead(&batch_);
  StartCall();
}

void KvWatchStream::Cancel() { context_.TryCancel(); }

void KvWatchStream::Fail(absl::Status status) {
  error_ = std::move(status);
  context_.TryCancel();  // no further read: OnDone follows
}

void KvWatchStream::OnReadDone(bool ok) {
  if (!ok) return;  // the stream is over; OnDone follows
  if (!got_snapshot_) {
    if (!batch_.snapshot()) {
      Fail(absl::DataLossError(absl::StrCat("the first KV event batch (sequence number ",
                                            batch_.sequence_number(), ") is not a snapshot")));
      return;
    }
    got_snapshot_ = true;
  } else if (batch_.sequence_number() != next_sequence_) {
    Fail(absl::DataLossError(absl::StrCat("KV event sequence gap: expected batch ", next_sequence_,
                                          ", got ", batch_.sequence_number())));
    return;
  }
  next_sequence_ = batch_.sequence_number() + 1;
  if (!callbacks_.on_batch(batch_)) {
    Fail(absl::CancelledError("the KV watch was stopped by its owner"));
    return;
  }
  StartRead(&batch_);
}

void KvWatchStream::OnDone(const grpc::Status& status) {
  absl::Status result = error_;
  if (result.ok() && !status.ok()) {
    result =
        absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  callbacks_.on_done(result, got_snapshot_);
  std::shared_ptr<KvWatchStream> self = std::move(self_);  // may delete this on return
}

}  // namespace tessera::router
