#include "controller/backoff.h"

#include <algorithm>

namespace ironboot::controller {

Backoff::Backoff(ClockPtr clock, BackoffOptions options)
    : clock_(std::move(clock)), options_(std::move(options)) {
  if (options_.initial <= std::chrono::milliseconds(0)) {
    options_.initial = std::chrono::milliseconds(1);
  }
  options_.max = std::max(options_.max, options_.initial);
  options_.multiplier = std::max(options_.multiplier, 1.0);
  options_.jitter = std::clamp(options_.jitter, 0.0, 1.0);
  next_attempt_ = clock_->Monotonic();
}

std::chrono::milliseconds Backoff::Failure() {
  if (failures_ == 0) {
    current_ = options_.initial;
  } else {
    double next = static_cast<double>(current_.count()) * options_.multiplier;
    double cap = static_cast<double>(options_.max.count());
    current_ = std::chrono::milliseconds(static_cast<long long>(std::min(next, cap)));
  }
  ++failures_;
  std::chrono::milliseconds delay = current_;
  if (options_.jitter > 0 && options_.uniform) {
    double u = std::clamp(options_.uniform(), 0.0, 1.0);
    double factor = 1.0 - options_.jitter + 2.0 * options_.jitter * u;
    double jittered = static_cast<double>(current_.count()) * factor;
    delay = std::chrono::milliseconds(static_cast<long long>(
        std::clamp(jittered, 0.0, static_cast<double>(options_.max.count()))));
  }
  next_attempt_ = clock_->Monotonic() + delay;
  return delay;
}

void Backoff::Success() {
  failures_ = 0;
  current_ = std::chrono::milliseconds(0);
  next_attempt_ = clock_->Monotonic();
}

bool Backoff::Ready() const {
  return clock_->Monotonic() >= next_attempt_;
}

std::chrono::steady_clock::time_point Backoff::NextAttempt() const {
  return std::max(next_attempt_, clock_->Monotonic());
}

}  // namespace ironboot::controller
