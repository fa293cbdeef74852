#pragma once
// common/: the Clock seam, so timeouts and backoff are tested without sleeping.

#include <chrono>
#include <memory>
#include <mutex>

namespace ironboot {

// Wall and monotonic time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
  virtual std::chrono::steady_clock::time_point Monotonic() const = 0;
};
using ClockPtr = std::shared_ptr<Clock>;

// The real clocks.
class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override;
  std::chrono::steady_clock::time_point Monotonic() const override;
};

// A clock that moves only when told. Starts at a fixed, arbitrary instant.
class FakeClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override;
  std::chrono::steady_clock::time_point Monotonic() const override;
  void Advance(std::chrono::nanoseconds d);

 private:
  mutable std::mutex mu_;
  std::chrono::nanoseconds offset_{0};  // guarded by mu_
};

}  // namespace ironboot
