#include "common/worker_pool.h"

#include <algorithm>

#include "common/internal_errors.h"
#include "common/thread_name.h"

namespace ironboot {

WorkerPool::WorkerPool(std::string thread_name, std::chrono::milliseconds idle_exit)
    : thread_name_(std::move(thread_name)), idle_exit_(idle_exit) {}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    for (auto& w : workers_) {
      w.wake.notify_one();
    }
  }
  for (auto& w : workers_) {
    w.thread.join();
  }
}

size_t WorkerPool::Threads() const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(
      std::count_if(workers_.begin(), workers_.end(), [](const Worker& w) { return !w.done; }));
}

void WorkerPool::RunAll(std::vector<std::function<void()>> tasks) {
  if (tasks.empty()) {
    return;
  }
  std::unique_lock lock(mu_);
  // Reap threads that ended idle since the last batch.
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->done) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  unfinished_ += tasks.size();
  for (auto& task : tasks) {
    if (!idle_.empty()) {
      Worker* w = idle_.back();
      idle_.pop_back();
      w->task = std::move(task);
      w->wake.notify_one();
    } else {
      auto& w = workers_.emplace_back();
      w.task = std::move(task);
      w.thread = std::thread([this, self = &w] { Work(self); });
    }
  }
  finished_.wait(lock, [&] { return unfinished_ == 0; });
}

void WorkerPool::Work(Worker* self) {
  SetThreadName(thread_name_);
  std::unique_lock lock(mu_);
  while (true) {
    if (self->task) {
      auto task = std::move(self->task);
      self->task = nullptr;
      lock.unlock();
      GuardInternal("worker_pool", task);  // a throwing task must not end the thread
      task = nullptr;  // free what the task captured before reporting it done
      lock.lock();
      idle_.push_back(self);
      if (--unfinished_ == 0) {
        finished_.notify_all();
      }
    }
    bool woke =
        self->wake.wait_for(lock, idle_exit_, [&] { return stop_ || self->task != nullptr; });
    if (stop_ || !woke) {
      // Stopping, or idle too long: leave the idle stack and end.
      idle_.erase(std::remove(idle_.begin(), idle_.end(), self), idle_.end());
      self->done = true;
      return;
    }
  }
}

}  // namespace ironboot
