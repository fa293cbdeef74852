#include "common/worker_pool.h"

#include "common/thread_name.h"

namespace ironboot {

WorkerPool::WorkerPool(std::string thread_name, std::chrono::milliseconds idle_exit)
    : thread_name_(std::move(thread_name)), idle_exit_(idle_exit) {}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_.notify_all();
  for (auto& w : workers_) {
    w.thread.join();
  }
}

size_t WorkerPool::Threads() const {
  std::lock_guard lock(mu_);
  size_t alive = 0;
  for (const auto& w : workers_) {
    alive += w.done ? 0 : 1;
  }
  return alive;
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
  size_t spawn = tasks.size() > idle_count_ ? tasks.size() - idle_count_ : 0;
  unfinished_ += tasks.size();
  for (auto& t : tasks) {
    queue_.push_back(std::move(t));
  }
  for (size_t i = 0; i < spawn; ++i) {
    auto& w = workers_.emplace_back();
    w.thread = std::thread([this, self = &w] { Work(self); });
  }
  work_.notify_all();
  idle_.wait(lock, [&] { return unfinished_ == 0; });
}

void WorkerPool::Work(Worker* self) {
  SetThreadName(thread_name_);
  std::unique_lock lock(mu_);
  while (true) {
    if (queue_.empty()) {
      ++idle_count_;
      bool woke = work_.wait_for(lock, idle_exit_, [&] { return stop_ || !queue_.empty(); });
      --idle_count_;
      if (stop_ || !woke) {
        self->done = true;
        return;
      }
    }
    auto task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task();
    task = nullptr;  // free what the task captured before reporting it done
    lock.lock();
    if (--unfinished_ == 0) {
      idle_.notify_all();
    }
  }
}

}  // namespace ironboot
