#include "common/clock.h"

#include <gtest/gtest.h>

namespace ironboot {
namespace {

// A fake clock moves only when advanced, both wall and monotonic time.
TEST(FakeClockTest, MovesOnlyWhenAdvanced) {
  FakeClock clock;
  auto wall = clock.Now();
  auto mono = clock.Monotonic();
  EXPECT_EQ(clock.Now(), wall);
  clock.Advance(std::chrono::seconds(5));
  EXPECT_EQ(clock.Now() - wall, std::chrono::seconds(5));
  EXPECT_EQ(clock.Monotonic() - mono, std::chrono::seconds(5));
}

}  // namespace
}  // namespace ironboot

namespace ironboot {
namespace {

// RFC 3339 in UTC, to the second or to the millisecond.
TEST(FormatRfc3339, SecondsAndMillis) {
  std::chrono::system_clock::time_point t{std::chrono::milliseconds(1795794384123)};
  EXPECT_EQ(FormatRfc3339(t), "2026-11-27T15:46:24Z");
  EXPECT_EQ(FormatRfc3339(t, true), "2026-11-27T15:46:24.123Z");
}

}  // namespace
}  // namespace ironboot
