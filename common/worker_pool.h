#pragma once
// common/: a pool of worker threads that are kept between batches of work.
//
// RunAll() starts every task of a batch at once (a task that blocks, like a
// call to a dead node waiting out its deadline, never holds another up), on
// threads kept from earlier batches where there are enough idle ones and on new
// threads otherwise. The thread that went idle last is reused first, so when
// batches shrink the surplus threads stay idle and end after `idle_exit`.
// Reusing threads is what makes the difference to a thread per task: the
// upgrade loop polls every machine in flight each pass, and creating and
// tearing down a thread (its stack, its malloc arena, gRPC's per-thread state)
// per poll cost more than the poll.

#include <chrono>
#include <condition_variable>
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
  ~WorkerPool();  // ends every thread (RunAll has returned: none is busy)
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs every task, each on its own thread, and returns when all are done.
  // A task that throws is reported as an internal error (component
  // worker_pool) and counts as finished. One RunAll at a time; not from inside
  // a task.
  void RunAll(std::vector<std::function<void()>> tasks);

  // Threads alive now, busy or idle (for tests).
  size_t Threads() const;

 private:
  struct Worker {
    std::thread thread;
    std::condition_variable wake;  // a task was handed over, or stop
    std::function<void()> task;    // set by RunAll, cleared by the worker
    bool done = false;             // the thread ended; joined by the next RunAll
  };
  void Work(Worker* self);

  const std::string thread_name_;
  const std::chrono::milliseconds idle_exit_;
  mutable std::mutex mu_;
  std::condition_variable finished_;  // a batch's task finished
  std::list<Worker> workers_;         // stable addresses
  std::vector<Worker*> idle_;         // a stack: the last to go idle is on top
  size_t unfinished_ = 0;
  bool stop_ = false;
};

}  // namespace ironboot
