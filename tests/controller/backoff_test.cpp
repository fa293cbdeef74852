// Tests of the exponential backoff schedule, on a fake clock.

#include "controller/backoff.h"

#include <chrono>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

namespace ironboot::controller {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Delays double from 1 s and stop at 5 min.
TEST(BackoffTest, DoublesFromOneSecondUpToFiveMinutes) {
  auto clock = std::make_shared<FakeClock>();
  Backoff backoff(clock);
  std::vector<milliseconds> delays;
  for (int i = 0; i < 12; ++i) {
    delays.push_back(backoff.Failure());
  }
  std::vector<milliseconds> want = {1s, 2s, 4s, 8s, 16s, 32s, 64s, 128s, 256s, 300s, 300s, 300s};
  EXPECT_EQ(delays, want);
  EXPECT_EQ(backoff.failures(), 12);
}

// The next attempt waits for the delay on the clock; success resets the schedule.
TEST(BackoffTest, ReadyAfterDelayAndResetOnSuccess) {
  auto clock = std::make_shared<FakeClock>();
  Backoff backoff(clock);
  EXPECT_TRUE(backoff.Ready());
  backoff.Failure();
  backoff.Failure();  // 2 s
  EXPECT_FALSE(backoff.Ready());
  EXPECT_EQ(backoff.NextAttempt() - clock->Monotonic(), 2s);
  clock->Advance(1999ms);
  EXPECT_FALSE(backoff.Ready());
  clock->Advance(1ms);
  EXPECT_TRUE(backoff.Ready());
  EXPECT_EQ(backoff.NextAttempt(), clock->Monotonic());

  backoff.Success();
  EXPECT_EQ(backoff.failures(), 0);
  EXPECT_TRUE(backoff.Ready());
  EXPECT_EQ(backoff.Failure(), 1s);
}

// Jitter scales each delay within [1-j, 1+j] using the injected random
// source, never beyond the maximum; the un-jittered schedule keeps doubling.
TEST(BackoffTest, InjectedJitter) {
  auto clock = std::make_shared<FakeClock>();
  double u = 0.0;
  BackoffOptions options;
  options.jitter = 0.5;
  options.uniform = [&] { return u; };
  Backoff backoff(clock, options);
  EXPECT_EQ(backoff.Failure(), 500ms);  // 1 s * 0.5
  u = 1.0;
  EXPECT_EQ(backoff.Failure(), 3s);  // 2 s * 1.5
  u = 0.5;
  EXPECT_EQ(backoff.Failure(), 4s);  // 4 s * 1.0
  for (int i = 0; i < 10; ++i) {
    backoff.Failure();
  }
  u = 1.0;
  EXPECT_EQ(backoff.Failure(), 300s);  // 300 s * 1.5, capped
}

// Custom initial, maximum and multiplier.
TEST(BackoffTest, CustomSchedule) {
  auto clock = std::make_shared<FakeClock>();
  BackoffOptions options;
  options.initial = 100ms;
  options.max = 1s;
  options.multiplier = 3.0;
  Backoff backoff(clock, options);
  std::vector<milliseconds> delays;
  for (int i = 0; i < 4; ++i) {
    delays.push_back(backoff.Failure());
  }
  EXPECT_EQ(delays, (std::vector<milliseconds>{100ms, 300ms, 900ms, 1s}));
}

}  // namespace
}  // namespace ironboot::controller
