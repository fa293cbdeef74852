// WorkerPool: every task of a batch runs at once, threads are kept between
// batches, and idle ones end.

#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

namespace ironboot {
namespace {

using namespace std::chrono_literals;

// Ten tasks that each wait for all ten to have started: they finish only if
// the pool runs them at the same time (a call to a dead node never holds up
// the polls of the others).
TEST(WorkerPoolTest, EveryTaskOfABatchRunsAtOnce) {
  WorkerPool pool("test-pool");
  constexpr int kTasks = 10;
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  std::atomic<int> all_met{0};
  std::vector<std::function<void()>> tasks;
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back([&] {
      std::unique_lock lock(mu);
      ++started;
      cv.notify_all();
      if (cv.wait_for(lock, 5s, [&] { return started == kTasks; })) {
        ++all_met;
      }
    });
  }
  pool.RunAll(std::move(tasks));
  EXPECT_EQ(all_met.load(), kTasks);
}

// A second batch runs on the threads of the first: no new threads.
TEST(WorkerPoolTest, ThreadsAreKeptBetweenBatches) {
  WorkerPool pool("test-pool");
  std::mutex mu;
  std::set<std::thread::id> first, second;
  auto batch = [&](std::set<std::thread::id>* ids) {
    std::vector<std::function<void()>> tasks;
    for (int i = 0; i < 4; ++i) {
      tasks.push_back([&, ids] {
        std::this_thread::sleep_for(20ms);  // all four overlap
        std::lock_guard lock(mu);
        ids->insert(std::this_thread::get_id());
      });
    }
    pool.RunAll(std::move(tasks));
  };
  batch(&first);
  EXPECT_EQ(pool.Threads(), 4u);
  batch(&second);
  EXPECT_EQ(pool.Threads(), 4u);
  EXPECT_EQ(first, second);
}

// RunAll returns only when every task is done, and an empty batch returns at once.
TEST(WorkerPoolTest, RunAllWaitsForEveryTask) {
  WorkerPool pool("test-pool");
  pool.RunAll({});
  std::atomic<int> done{0};
  std::vector<std::function<void()>> tasks;
  for (int i = 0; i < 6; ++i) {
    tasks.push_back([&, i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5 * i));
      ++done;
    });
  }
  pool.RunAll(std::move(tasks));
  EXPECT_EQ(done.load(), 6);
}

// Threads idle for longer than idle_exit end; the next batch starts new ones.
TEST(WorkerPoolTest, IdleThreadsEnd) {
  WorkerPool pool("test-pool", 50ms);
  std::vector<std::function<void()>> tasks(3, [] {});
  pool.RunAll(std::move(tasks));
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (pool.Threads() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(pool.Threads(), 0u);
  std::atomic<int> ran{0};
  std::vector<std::function<void()>> again(2, [&] { ++ran; });
  pool.RunAll(std::move(again));
  EXPECT_EQ(ran.load(), 2);
}

// When batches shrink, the threads idle the longest are not handed work
// (the last to go idle is reused first), so they end: a pool grown to 8 by one
// batch settles at 2 threads under batches of 2.
TEST(WorkerPoolTest, SurplusThreadsEndWhenBatchesShrink) {
  WorkerPool pool("test-pool", 200ms);
  std::vector<std::function<void()>> wide(8, [] { std::this_thread::sleep_for(30ms); });
  pool.RunAll(std::move(wide));
  ASSERT_EQ(pool.Threads(), 8u);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (pool.Threads() > 2 && std::chrono::steady_clock::now() < deadline) {
    std::vector<std::function<void()>> narrow(2, [] { std::this_thread::sleep_for(1ms); });
    pool.RunAll(std::move(narrow));
    std::this_thread::sleep_for(20ms);
  }
  // 2, or fewer if a stalled loop on a busy machine let those end too; the
  // 8 of the first batch all staying alive is what would be wrong.
  EXPECT_LE(pool.Threads(), 2u);
}

}  // namespace
}  // namespace ironboot
