// A Communicator that forwards every call to another one and adds up the host time spent in
// its collectives (AllReduceSum, AllGather, Broadcast, Barrier): the leader's
// `tessera_tp_collective_seconds_total`. On the CPU (MPI) the collectives block, so this is
// their real time; NCCL collectives only enqueue work (and graph-captured decode steps call
// none), so there it measures the host side only.
//
// Not thread-safe, like every Communicator, except seconds(), which any thread may read.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "worker/comm/communicator.h"

namespace tessera {

class TimedCommunicator final : public Communicator {
 public:
  explicit TimedCommunicator(std::unique_ptr<Communicator> inner) : inner_(std::move(inner)) {}

  // Seconds spent in the collectives so far.
  double seconds() const { return seconds_.load(std::memory_order_relaxed); }

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  absl::Status AllReduceSum(Tensor& t) override;
  absl::Status AllGather(const Tensor& in, Tensor& out) override;
  absl::Status Broadcast(std::string& bytes, int root) override;
  absl::Status Barrier() override;
  std::string name() const override { return inner_->name(); }
  bool SupportsGraphCapture() const override { return inner_->SupportsGraphCapture(); }

 private:
  template <typename F>
  absl::Status Timed(F&& f);

  std::unique_ptr<Communicator> inner_;
  std::atomic<double> seconds_{0.0};
};

}  // namespace tessera
