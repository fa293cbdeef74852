#include "common/clock.h"

#include <cstdio>
#include <ctime>

namespace ironboot {

std::string FormatRfc3339(std::chrono::system_clock::time_point t, bool millis) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  int n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (millis) {
    std::snprintf(buf + n, sizeof(buf) - static_cast<size_t>(n), ".%03dZ", static_cast<int>(ms % 1000));
  } else {
    std::snprintf(buf + n, sizeof(buf) - static_cast<size_t>(n), "Z");
  }
  return buf;
}

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
