#include "common/clock.h"

namespace ironboot {

std::chrono::system_clock::time_point SystemClock::Now() const {
  return std::chrono::system_clock::now();
}
std::chrono::steady_clock::time_point SystemClock::Monotonic() const {
  return std::chrono::steady_clock::now();
}

namespace {
// 2026-01-01T00:00:00Z: fixed so tests that print times are reproducible.
constexpr std::chrono::seconds kFakeEpoch{1767225600};
}  // namespace

std::chrono::system_clock::time_point FakeClock::Now() const {
  std::lock_guard lock(mu_);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(kFakeEpoch + offset_));
}
std::chrono::steady_clock::time_point FakeClock::Monotonic() const {
  std::lock_guard lock(mu_);
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(offset_));
}
void FakeClock::Advance(std::chrono::nanoseconds d) {
  std::lock_guard lock(mu_);
  offset_ += d;
}

}  // namespace ironboot
