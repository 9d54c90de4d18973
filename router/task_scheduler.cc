#include "router/task_scheduler.h"

#include <pthread.h>

#include <utility>

namespace tessera::router {

TaskScheduler::TaskScheduler()
    : thread_([this] {
        pthread_setname_np(pthread_self(), kThreadName);  // for top -H, gdb and tests
        Loop();
      }) {}

TaskScheduler::~TaskScheduler() { Stop(); }

void TaskScheduler::Schedule(absl::Time when, std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  tasks_.emplace(when, std::move(task));
}

void TaskScheduler::Stop() {
  std::multimap<absl::Time, std::function<void()>> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(tasks_);
  }
  if (thread_.joinable()) thread_.join();
  // `dropped` is destroyed here, outside the lock: tasks may own objects whose
  // destructors schedule (a no-op now) or take other locks.
}

bool TaskScheduler::HasTasksOrStopping() const { return stopping_ || !tasks_.empty(); }

size_t TaskScheduler::pending() const {
  absl::MutexLock lock(&mu_);
  return tasks_.size();
}

void TaskScheduler::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (tasks_.empty()) {
      mu_.Await(absl::Condition(this, &TaskScheduler::HasTasksOrStopping));
      continue;
    }
    const absl::Time due = tasks_.begin()->first;
    if (due > absl::Now()) {
      // Wake at `due`, on Stop, or when an earlier task is scheduled.
      struct Earlier {
        const TaskScheduler* s;
        absl::Time due;
        bool operator()() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return s->stopping_ || (!s->tasks_.empty() && s->tasks_.begin()->first < due);
        }
      } earlier{this, due};
      mu_.AwaitWithDeadline(absl::Condition(&earlier), due);
      continue;
    }
    std::function<void()> task = std::move(tasks_.begin()->second);
    tasks_.erase(tasks_.begin());
    mu_.Unlock();
    task();
    task = nullptr;  // destroy captures outside the lock too
    mu_.Lock();
  }
}

}  // namespace tessera::router
