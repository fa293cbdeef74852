// manifests/values.h: the scalar parsers behind every field check.

#include "manifests/values.h"

#include <gtest/gtest.h>

namespace ironboot::manifests {
namespace {

// MACs in every notation normalise to lowercase colons; bad ones say why.
TEST(ValuesTest, MacNotations) {
  for (const char* text :
       {"00:23:24:E7:29:40", "00-23-24-e7-29-40", "0023.24e7.2940", "002324e72940"}) {
    auto mac = ParseMac(text);
    ASSERT_TRUE(mac) << text;
    EXPECT_EQ(*mac, "00:23:24:e7:29:40") << text;
  }
  EXPECT_EQ(ParseMac("00:23:24:e7:29").error().reason, "want 6 octets");
  EXPECT_EQ(ParseMac("00:23:24:e7:29:40:11").error().reason, "want 6 octets");
  EXPECT_EQ(ParseMac("00:23-24:e7:29:40").error().reason, "mixes separators");
  EXPECT_EQ(ParseMac("0:023:24:e7:29:40").error().reason, "want 6 groups of 2 hex digits");
  EXPECT_EQ(ParseMac("g0:23:24:e7:29:40").error().reason,
            "want hex digits, e.g. 00:23:24:e7:29:40");
}

// Prefixes contain their addresses, per family; bad prefix lengths are refused.
TEST(ValuesTest, IpPrefixes) {
  auto net = ParseIpPrefix("10.0.4.0/24", true);
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->Contains(*ParseIp("10.0.4.255")));
  EXPECT_FALSE(net->Contains(*ParseIp("10.0.5.1")));
  EXPECT_FALSE(net->Contains(*ParseIp("fd00::1")));
  auto v6 = ParseIpPrefix("fd00:1::/32", true);
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->Contains(*ParseIp("fd00:1:2::3")));
  EXPECT_FALSE(ParseIpPrefix("10.0.4.0/33", true));
  EXPECT_FALSE(ParseIpPrefix("10.0.4.0", true));
  EXPECT_EQ(ParseIpPrefix("10.0.4.1", false)->ToString(), "10.0.4.1");
}

// Talos versions are release tags; Plain() gives the seed's path spelling.
TEST(ValuesTest, TalosVersions) {
  auto v = ParseTalosVersion("v1.14.0-rc.1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->minor, 14);
  EXPECT_EQ(v->prerelease, "rc.1");
  EXPECT_EQ(ParseTalosVersion("v1.11.3")->Plain(), "1.11.3");
  for (const char* bad : {"1.11.3", "v1.11", "v1.x.3", "v1.11.3-", "latest"}) {
    EXPECT_FALSE(ParseTalosVersion(bad)) << bad;
  }
  EXPECT_EQ(*ParseKubernetesVersion("v1.34.1"), "1.34.1");
}

// Durations, URLs and typo suggestions.
TEST(ValuesTest, DurationsUrlsAndNearestWord) {
  EXPECT_EQ(*ParseDuration("1h30m"), 5400);
  EXPECT_FALSE(ParseDuration("10"));
  EXPECT_FALSE(ParseDuration("ten minutes"));
  EXPECT_EQ(*ParseHttpUrl("http://10.0.112.2:8080/"), "http://10.0.112.2:8080");
  EXPECT_FALSE(ParseHttpUrl("http://10.0.112.2:8080", true));
  EXPECT_FALSE(ParseHttpUrl("https://"));
  EXPECT_EQ(NearestWord("instalDisk", {"installDisk", "interface"}), "installDisk");
  EXPECT_EQ(NearestWord("colour", {"installDisk", "interface"}), "");
}

}  // namespace
}  // namespace ironboot::manifests
