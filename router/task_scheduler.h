// Runs short tasks at given times on one background thread: the worker pool's
// poll ticks and KV-watch reconnects. A task must not block (it starts
// asynchronous gRPC calls and returns); a slow task delays every later one.
//
// Thread-safe: Schedule may be called from any thread, including from a task.
#pragma once

#include <functional>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tessera::router {

class TaskScheduler {
 public:
  // The thread's name (pthread_setname_np).
  static constexpr char kThreadName[] = "tessera-tasks";

  TaskScheduler();   // starts the thread
  ~TaskScheduler();  // Stop()
  TaskScheduler(const TaskScheduler&) = delete;
  TaskScheduler& operator=(const TaskScheduler&) = delete;

  // Runs `task` on the scheduler thread at `when` (at once when it is past).
  // Tasks due at the same time run in the order they were scheduled. After
  // Stop() this does nothing (the task is destroyed unrun).
  void Schedule(absl::Time when, std::function<void()> task);
  // Drops the pending tasks and joins the thread (a running task finishes
  // first). Idempotent; must not be called from a task.
  void Stop();

  size_t pending() const;  // tasks waiting (tests)

 private:
  void Loop();
  bool HasTasksOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::multimap<absl::Time, std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tessera::router
