// ConfigAccess, the /config policy, with a FakeClock: static address, iPXE
// grants, tokens, rate limit, and the helpers it is wired with.

#include "bootserver/config_access.h"

#include <gtest/gtest.h>

#include <chrono>

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

// A machine without a static address: the address that fetched its iPXE
// script may fetch the config within the window, not after it; another MAC's
// fetch does not count.
TEST_F(ConfigAccessTest, IpxeFetchOpensTheWindow) {
  auto o = NoRate();
  o.window = minutes(10);
  auto a = Make(o);
  IpxeGrant grant = a.RecordIpxeFetch(kMac, "", "10.0.9.9");
  EXPECT_EQ(grant.result, IpxeGrant::Result::kGranted);
  EXPECT_EQ(grant.token, "");  // no token when tokens are off
  a.RecordIpxeFetch("52:54:00:00:00:01", "", "10.0.9.8");
  clock_->Advance(minutes(9));
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.9.9", ""), ConfigDecision::kServed);
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.9.8", ""), ConfigDecision::kDeniedAddress);
  clock_->Advance(minutes(1) + seconds(1));
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.9.9", ""), ConfigDecision::kDeniedAddress);
}

// A machine with a static address: an iPXE fetch from elsewhere grants
// nothing and names the address that would; from the static address it is
// granted (IPv4-mapped or not).
TEST_F(ConfigAccessTest, StaticAddressGrantsOnlyItself) {
  auto a = Make(NoRate());
  IpxeGrant stranger = a.RecordIpxeFetch(kMac, "10.0.4.101/24", "10.0.9.9");
  EXPECT_EQ(stranger.result, IpxeGrant::Result::kStaticAddress);
  EXPECT_EQ(stranger.other_address, "10.0.4.101");
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101/24", "10.0.9.9", ""), ConfigDecision::kDeniedAddress);
  EXPECT_EQ(a.RecordIpxeFetch(kMac, "10.0.4.101/24", "::ffff:10.0.4.101").result,
            IpxeGrant::Result::kGranted);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101/24", "10.0.4.101", ""), ConfigDecision::kServed);
}

// A live grant is the first address's: any number of other addresses
// fetching the script get kHeldByAnother (naming the holder) and 403, the
// holder keeps its grant, renews it with each fetch, and may fetch the config
// repeatedly; when it lapses the next address takes it.
TEST_F(ConfigAccessTest, GrantIsNotDisplaced) {
  auto o = NoRate();
  o.window = minutes(10);
  auto a = Make(o);
  ASSERT_EQ(a.RecordIpxeFetch(kMac, "", "10.0.9.9").result, IpxeGrant::Result::kGranted);
  for (int i = 0; i < 100; ++i) {
    IpxeGrant other = a.RecordIpxeFetch(kMac, "", "10.0.8." + std::to_string(i));
    EXPECT_EQ(other.result, IpxeGrant::Result::kHeldByAnother) << i;
    EXPECT_EQ(other.other_address, "10.0.9.9");
  }
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.8.1", ""), ConfigDecision::kDeniedAddress);
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.9.9", ""), ConfigDecision::kServed);
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.9.9", ""), ConfigDecision::kServed);  // a retry
  clock_->Advance(minutes(8));
  ASSERT_EQ(a.RecordIpxeFetch(kMac, "", "10.0.9.9").result, IpxeGrant::Result::kGranted);
  clock_->Advance(minutes(8));
  EXPECT_EQ(a.RecordIpxeFetch(kMac, "", "10.0.8.1").result, IpxeGrant::Result::kHeldByAnother);
  clock_->Advance(minutes(2) + seconds(1));
  EXPECT_EQ(a.RecordIpxeFetch(kMac, "", "10.0.8.1").result, IpxeGrant::Result::kGranted);
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.8.1", ""), ConfigDecision::kServed);
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.9.9", ""), ConfigDecision::kDeniedAddress);
}

// An unknown MAC is unknown_mac whatever the address.
TEST_F(ConfigAccessTest, UnknownMac) {
  auto a = Make(NoRate());
  EXPECT_EQ(a.Decide(kMac, false, "", "10.0.4.101", ""), ConfigDecision::kUnknownMac);
}

// With tokens on: only a granted fetch gets a token; the token is required, a
// wrong or missing one is denied, it works again for a retry, only from its
// address, and expires with the window; another machine's token does not fit.
TEST_F(ConfigAccessTest, Tokens) {
  auto o = NoRate();
  o.tokens = true;
  auto a = Make(o);
  EXPECT_EQ(a.RecordIpxeFetch(kMac, "10.0.4.101", "10.0.4.102").token, "");
  std::string token = a.RecordIpxeFetch(kMac, "10.0.4.101", "10.0.4.101").token;
  ASSERT_EQ(token.size(), 32u);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", ""), ConfigDecision::kDeniedToken);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", std::string(32, '0')),
            ConfigDecision::kDeniedToken);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.102", token),
            ConfigDecision::kDeniedAddress);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", token), ConfigDecision::kServed);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", token), ConfigDecision::kServed);

  std::string second = a.RecordIpxeFetch(kMac, "10.0.4.101", "10.0.4.101").token;
  EXPECT_NE(second, token);
  clock_->Advance(minutes(10) + seconds(1));
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", second),
            ConfigDecision::kDeniedToken);  // expired
  // A token of another machine does not open this one.
  std::string other = a.RecordIpxeFetch("52:54:00:00:00:01", "", "10.0.4.101").token;
  ASSERT_EQ(other.size(), 32u);
  EXPECT_EQ(a.Decide(kMac, true, "10.0.4.101", "10.0.4.101", other), ConfigDecision::kDeniedToken);
  // A DHCP machine: the holder's token, not a later stranger's (who has none).
  std::string held = a.RecordIpxeFetch(kMac, "", "10.0.4.103").token;
  ASSERT_EQ(held.size(), 32u);
  EXPECT_EQ(a.RecordIpxeFetch(kMac, "", "10.0.4.104").token, "");
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.4.104", held), ConfigDecision::kDeniedAddress);
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.4.103", held), ConfigDecision::kServed);
}

// The holder's newest kMaxTokensPerGrant tokens are valid, older ones not.
TEST_F(ConfigAccessTest, TokensPerGrantAreBounded) {
  auto o = NoRate();
  o.tokens = true;
  auto a = Make(o);
  std::string first = a.RecordIpxeFetch(kMac, "", "10.0.4.103").token;
  std::string second = a.RecordIpxeFetch(kMac, "", "10.0.4.103").token;
  for (size_t i = 2; i < ConfigAccess::kMaxTokensPerGrant + 1; ++i) {
    a.RecordIpxeFetch(kMac, "", "10.0.4.103");
  }
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.4.103", first), ConfigDecision::kDeniedToken);
  EXPECT_EQ(a.Decide(kMac, true, "", "10.0.4.103", second), ConfigDecision::kServed);
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

// A full rate table forgets the address updated least recently (its next
// request starts with a full bucket) and keeps the others' buckets; a
// request refreshes an address's place.
TEST_F(ConfigAccessTest, RateTableForgetsLeastRecentlyUpdated) {
  ConfigAccessOptions o;
  o.rate_per_second = 1.0 / 60;
  o.burst = 1;
  o.max_rate_clients = 3;
  auto a = Make(o);
  for (const char* client : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
    EXPECT_EQ(a.Decide(kMac, false, "", client, ""), ConfigDecision::kUnknownMac) << client;
  }
  clock_->Advance(seconds(1));
  EXPECT_EQ(a.Decide(kMac, false, "", "10.0.0.1", ""), ConfigDecision::kRateLimited);
  // .1 was refreshed, so the fourth address pushes out .2.
  EXPECT_EQ(a.Decide(kMac, false, "", "10.0.0.4", ""), ConfigDecision::kUnknownMac);
  EXPECT_EQ(a.Decide(kMac, false, "", "10.0.0.1", ""), ConfigDecision::kRateLimited);
  EXPECT_EQ(a.Decide(kMac, false, "", "10.0.0.3", ""), ConfigDecision::kRateLimited);
  EXPECT_EQ(a.Decide(kMac, false, "", "10.0.0.2", ""), ConfigDecision::kUnknownMac);  // forgotten
}

// Issue 15: past 65,536 addresses the table used to be scanned in full under
// the mutex for every new address (minutes for this loop). 131,072 new
// addresses within one refill now take well under the deadline (each costs
// O(log n)).
TEST_F(ConfigAccessTest, FullRateTableStaysFast) {
  ConfigAccessOptions o;  // the defaults: 65,536 addresses, 10/m, burst 5
  auto a = Make(o);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 131072; ++i) {
    std::string client = "10." + std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) +
                         "." + std::to_string(i & 255);
    ASSERT_EQ(a.Decide(kMac, false, "", client, ""), ConfigDecision::kUnknownMac) << client;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
}

// Loopback is 127.0.0.0/8 and ::1, in any form CanonicalAddress accepts.
TEST(ConfigAccessAddress, IsLoopbackAddress) {
  for (const char* yes : {"127.0.0.1", "127.0.4.101", "::1", "::ffff:127.0.0.1", "127.0.0.1/8"}) {
    EXPECT_TRUE(IsLoopbackAddress(yes)) << yes;
  }
  for (const char* no : {"10.0.4.101", "::ffff:10.0.0.1", "fe80::1", "", "1.127.0.0"}) {
    EXPECT_FALSE(IsLoopbackAddress(no)) << no;
  }
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
