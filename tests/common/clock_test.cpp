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
