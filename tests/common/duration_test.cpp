// Tests of ParseDuration, the one duration syntax of every flag.

#include "common/duration.h"

#include <gtest/gtest.h>

namespace ironboot {
namespace {

using namespace std::chrono_literals;

// Units, fractions and plain seconds parse; anything else is refused.
TEST(Duration, UnitsFractionsAndRefusals) {
  EXPECT_EQ(ParseDuration("500ms"), 500ms);
  EXPECT_EQ(ParseDuration("10s"), 10s);
  EXPECT_EQ(ParseDuration("1.5s"), 1500ms);
  EXPECT_EQ(ParseDuration("2m"), 2min);
  EXPECT_EQ(ParseDuration("1h"), 1h);
  EXPECT_EQ(ParseDuration("30"), 30s);
  EXPECT_EQ(ParseDuration("0s"), 0ms);
  for (const char* bad : {"", "s", "10 s", "10x", "-1s", "1d", "ms10"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace ironboot
