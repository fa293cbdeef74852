#pragma once
// controller/: exponential backoff for retrying a failing source or reconcile.
// Pure: time comes from the injected Clock, randomness from an injected
// function, so tests step through the schedule without sleeping.

#include <chrono>
#include <functional>

#include "common/clock.h"

namespace ironboot::controller {

struct BackoffOptions {
  std::chrono::milliseconds initial{std::chrono::seconds(1)};
  std::chrono::milliseconds max{std::chrono::minutes(5)};
  double multiplier = 2.0;
  // Each delay is scaled by a factor drawn uniformly from [1 - jitter, 1 + jitter]
  // (then capped at `max`). 0 = no jitter.
  double jitter = 0.0;
  // Returns a number in [0, 1). Required when jitter > 0; tests inject a fixed one.
  std::function<double()> uniform;
};

// Not thread-safe: owned by one loop.
class Backoff {
 public:
  Backoff(ClockPtr clock, BackoffOptions options = {});

  // Records a failure and returns the delay before the next attempt:
  // initial, initial*2, initial*4, ... capped at max (jitter applied after).
  std::chrono::milliseconds Failure();
  // Records a success: the next failure starts again from `initial`.
  void Success();

  // True when no failure is pending or its delay has passed.
  bool Ready() const;
  // When the next attempt may run (the clock's "now" if Ready()).
  std::chrono::steady_clock::time_point NextAttempt() const;
  // Consecutive failures since the last success.
  int failures() const { return failures_; }

 private:
  // Constant after construction.
  ClockPtr clock_;
  BackoffOptions options_;

  int failures_ = 0;
  std::chrono::milliseconds current_{0};  // the un-jittered delay of the last failure
  std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace ironboot::controller
