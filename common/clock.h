#pragma once
// common/: the Clock seam, so timeouts and backoff are tested without sleeping.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

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

// UTC RFC 3339: "2026-11-27T14:05:09Z", or with `millis` "2026-11-27T14:05:09.123Z".
std::string FormatRfc3339(std::chrono::system_clock::time_point t, bool millis = false);

}  // namespace ironboot
