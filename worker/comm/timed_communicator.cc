#include "worker/comm/timed_communicator.h"

#include <chrono>

namespace tessera {

template <typename F>
absl::Status TimedCommunicator::Timed(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = f();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // One writer (the engine thread): load + store is enough.
  seconds_.store(seconds_.load(std::memory_order_relaxed) + elapsed, std::memory_order_relaxed);
  return s;
}

absl::Status TimedCommunicator::AllReduceSum(Tensor& t) {
  return Timed([&] { return inner_->AllReduceSum(t); });
}

absl::Status TimedCommunicator::AllGather(const Tensor& in, Tensor& out) {
  return Timed([&] { return inner_->AllGather(in, out); });
}

absl::Status TimedCommunicator::Broadcast(std::string& bytes, int root) {
  return Timed([&] { return inner_->Broadcast(bytes, root); });
}

absl::Status TimedCommunicator::Barrier() {
  return Timed([&] { return inner_->Barrier(); });
}

}  // namespace tessera
