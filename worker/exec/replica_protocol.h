// The leader/follower protocol of one replica's ranks, in one place. Rank 0
// (the leader: scheduler, engine loop, sampling) drives; ranks 1..N-1 (the
// followers) only run what it sends. Every message is a tessera.v1.StepPlan
// broadcast from rank 0 (Communicator::Broadcast), and every rank acts on it
// in the same order:
//   KIND_FORWARD    every rank runs the forward pass the plan describes
//                   (SendStepPlan; the leader then runs it itself)
//   KIND_HEARTBEAT  every rank joins a Barrier: an idle leader's liveness check
//                   (a small broadcast can complete at the root alone)
//   KIND_SHUTDOWN   the followers leave RunFollower and exit cleanly
// A collective that fails or times out breaks the communicator: the replica
// is then torn down (mpirun / the pod restarts it).
//
// Not thread-safe: on each rank one thread (the engine thread on the leader,
// main() on a follower) calls these.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "tessera/v1/step_plan.pb.h"
#include "worker/comm/communicator.h"
#include "worker/exec/model_executor.h"

namespace tessera {

// Leader: sends `plan` to the followers (nothing with one rank). `scratch`
// is reused for the serialized bytes.
absl::Status SendStepPlan(Communicator& comm, const v1::StepPlan& plan, std::string& scratch);

// Leader: a KIND_HEARTBEAT plan, then the Barrier every rank joins. An error
// (e.g. DEADLINE_EXCEEDED from a communicator with a timeout) means a rank is
// dead or hung. Nothing with one rank.
absl::Status SendHeartbeat(Communicator& comm);

// Leader: tells the followers to leave RunFollower. Call once, at the end.
absl::Status SendShutdown(Communicator& comm);

// Follower: receives each plan from rank 0 and runs it, until a
// KIND_SHUTDOWN plan arrives (returns OK, after the device work is done) or a
// collective fails (returns that error). DATA_LOSS for a plan that does not
// parse or has an unknown kind.
absl::Status RunFollower(ModelExecutor& executor, Communicator& comm);

}  // namespace tessera
