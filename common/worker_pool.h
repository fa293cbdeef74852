#pragma once
// common/: a pool of worker threads that are kept between batches of work.
//
// RunAll() starts every task of a batch at once (a task that blocks, like a
// call to a dead node waiting out its deadline, never holds another up), on
// threads kept from earlier batches where there are enough idle ones and on new
// threads otherwise. A thread idle for `idle_exit` ends, so a pool sized by one
// large batch shrinks again. Reusing threads is what makes the difference to a
// thread per task: the upgrade loop polls every machine in flight each pass,
// and creating and tearing down a thread (its stack, its malloc arena, gRPC's
// per-thread state) per poll cost more than the poll.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ironboot {

class WorkerPool {
 public:
  explicit WorkerPool(std::string thread_name,
                      std::chrono::milliseconds idle_exit = std::chrono::seconds(60));
  ~WorkerPool();  // waits for running tasks, then ends every thread
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs every task, each on its own thread, and returns when all are done.
  // Tasks must not throw. Not reentrant from inside a task.
  void RunAll(std::vector<std::function<void()>> tasks);

  // Threads alive now, busy or idle (for tests).
  size_t Threads() const;

 private:
  struct Worker {
    std::thread thread;
    bool done = false;  // set by the thread as it ends; joined by the next RunAll
  };
  void Work(Worker* self);

  const std::string thread_name_;
  const std::chrono::milliseconds idle_exit_;
  mutable std::mutex mu_;
  std::condition_variable work_;   // a task was queued, or stop
  std::condition_variable idle_;   // a batch's task finished
  std::deque<std::function<void()>> queue_;
  std::list<Worker> workers_;
  size_t idle_count_ = 0;
  size_t unfinished_ = 0;
  bool stop_ = false;
};

}  // namespace ironboot
