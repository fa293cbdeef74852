// ConfigAccess, the /config policy, with a FakeClock: static address, iPXE
// window, one-time tokens, rate limit, and the helpers it is wired with.

#include "bootserver/config_access.h"

#include <gtest/gtest.h>

namespace ironboot::bootserver {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

constexpr char kMac[] = "52:54:00:12:34:56";

class ConfigAccessTest : public ::testing::Test {
 protected:
  ConfigAccess Make(ConfigAccessOptions o) { return ConfigAccess(o, clock_); }
  static ConfigAccessOptions NoRate() {
    ConfigAccessOptions o;
    o.rate_per_second = 0;
    return o;
  }
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
};

// The machine's static address gets its config without an iPXE fetch; a
// prefix on the plan's address or an IPv4-mapped client address does not matter.
TEST_F(ConfigAccessTest, StaticAddressIsServed) {
  auto a = Make(NoRate());
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", ""), ConfigDecision::kServed);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101/24", "::ffff:10.0.4.101", ""),
            ConfigDecision::kServed);
}

// The right MAC from another address is refused, with or without a static address.
TEST_F(ConfigAccessTest, WrongAddressIsDenied) {
  auto a = Make(NoRate());
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.102", ""), ConfigDecision::kDeniedAddress);
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.4.102", ""), ConfigDecision::kDeniedAddress);
}

// The address that fetched the machine's iPXE script may fetch the config
// within the window, not after it; another MAC's fetch does not count.
TEST_F(ConfigAccessTest, IpxeFetchOpensTheWindow) {
  auto o = NoRate();
  o.window = minutes(10);
  auto a = Make(o);
  EXPECT_EQ(a.RecordIpxeFetch(kMac, "10.0.9.9"), "");  // no token when tokens are off
  a.RecordIpxeFetch("52:54:00:00:00:01", "10.0.9.8");
  clock_->Advance(minutes(9));
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.9.9", ""), ConfigDecision::kServed);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.9.8", ""), ConfigDecision::kDeniedAddress);
  clock_->Advance(minutes(1) + seconds(1));
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.9.9", ""), ConfigDecision::kDeniedAddress);
}

// An unknown MAC is unknown_mac whatever the address.
TEST_F(ConfigAccessTest, UnknownMac) {
  auto a = Make(NoRate());
  EXPECT_EQ(a.Decide(kMac, false, "", "10.0.4.101", ""), ConfigDecision::kUnknownMac);
}

// With tokens on: the script's token is required, works once, a wrong or
// missing one is denied, and it expires with the window; the address rule still applies.
TEST_F(ConfigAccessTest, OneTimeTokens) {
  auto o = NoRate();
  o.tokens = true;
  auto a = Make(o);
  std::string token = a.RecordIpxeFetch(kMac, "10.0.4.101");
  ASSERT_EQ(token.size(), 32u);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", ""), ConfigDecision::kDeniedToken);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", std::string(32, '0')),
            ConfigDecision::kDeniedToken);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.102", token),
            ConfigDecision::kDeniedAddress);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", token), ConfigDecision::kServed);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", token),
            ConfigDecision::kDeniedToken);  // reused

  std::string second = a.RecordIpxeFetch(kMac, "10.0.4.101");
  EXPECT_NE(second, token);
  clock_->Advance(minutes(10) + seconds(1));
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", second),
            ConfigDecision::kDeniedToken);  // expired
  // A token of another machine does not open this one.
  std::string other = a.RecordIpxeFetch("52:54:00:00:00:01", "10.0.4.101");
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", other), ConfigDecision::kDeniedToken);
}

// The per-address bucket allows the burst, then refills at the rate; another
// address has its own bucket; denied requests count against the bucket too.
TEST_F(ConfigAccessTest, RateLimitPerAddress) {
  ConfigAccessOptions o;
  o.rate_per_second = 10.0 / 60;  // one every 6 s
  o.burst = 5;
  auto a = Make(o);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(a.Decide(kMac, true, "", "10.0.9.9", ""), ConfigDecision::kDeniedAddress) << i;
  }
  EXPECT_EQ(a.Decide(kMac, true, "10.0.9.9", "10.0.9.9", ""), ConfigDecision::kRateLimited);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", ""), ConfigDecision::kServed);
  clock_->Advance(seconds(6));
  EXPECT_EQ(a.Decide(kMac, true, "10.0.9.9", "10.0.9.9", ""), ConfigDecision::kServed);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.9.9", "10.0.9.9", ""), ConfigDecision::kRateLimited);
}

// Result labels are the metric's documented values.
TEST(ConfigAccessLabels, ResultLabels) {
  EXPECT_EQ(ResultLabel(ConfigDecision::kServed), "served");
  EXPECT_EQ(ResultLabel(ConfigDecision::kDeniedAddress), "denied_address");
  EXPECT_EQ(ResultLabel(ConfigDecision::kDeniedToken), "denied_token");
  EXPECT_EQ(ResultLabel(ConfigDecision::kUnknownMac), "unknown_mac");
  EXPECT_EQ(ResultLabel(ConfigDecision::kRateLimited), "rate_limited");
}

// -config-rate parses N/s, N/m, N/h and 0; anything else names the flag and the form wanted.
TEST(ConfigAccessRate, ParseConfigRate) {
  EXPECT_DOUBLE_EQ(*ParseConfigRate("config-rate", "10/m"), 10.0 / 60);
  EXPECT_DOUBLE_EQ(*ParseConfigRate("config-rate", "2/s"), 2.0);
  EXPECT_DOUBLE_EQ(*ParseConfigRate("config-rate", "36/h"), 0.01);
  EXPECT_DOUBLE_EQ(*ParseConfigRate("config-rate", "0"), 0.0);
  for (const char* bad : {"", "10", "/m", "10/d", "x/m", "-1/m", "10/"}) {
    auto r = ParseConfigRate("config-rate", bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().message, "-config-rate \"" + std::string(bad) +
                                     "\": want N/s, N/m or N/h (e.g. 10/m), or 0 for no limit");
  }
}

// The token goes at the end of the talos.config= URL, not elsewhere in the script.
TEST(ConfigAccessToken, AddConfigToken) {
  std::string script =
      "#!ipxe\nkernel /assets/vmlinuz talos.config=http://10.0.0.2/config?mac=${mac:hexhyp} "
      "console=ttyS0\nboot\n";
  EXPECT_EQ(
      AddConfigToken(script, "abc"),
      "#!ipxe\nkernel /assets/vmlinuz "
      "talos.config=http://10.0.0.2/config?mac=${mac:hexhyp}&token=abc console=ttyS0\nboot\n");
  EXPECT_EQ(AddConfigToken("kernel k talos.config=http://h/c\n", "t"),
            "kernel k talos.config=http://h/c?token=t\n");
  EXPECT_EQ(AddConfigToken("kernel k\n", "t"), "kernel k\n");
}

}  // namespace
}  // namespace ironboot::bootserver
