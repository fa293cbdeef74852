// Request labels the Matchbox way: query parsing, percent-decoding, first
// value of a repeated key, case-sensitive keys, and the "mac" key.

#include "bootserver/labels.h"

#include <gtest/gtest.h>

namespace ironboot::bootserver {
namespace {

// %XX and '+' decode like Go's url.QueryUnescape; bad escapes stay literal.
TEST(QueryUnescapeTest, DecodesPercentAndPlus) {
  EXPECT_EQ(QueryUnescape("a%20b+c"), "a b c");
  EXPECT_EQ(QueryUnescape("%3a%3A"), "::");
  EXPECT_EQ(QueryUnescape("100%"), "100%");
  EXPECT_EQ(QueryUnescape("%zz"), "%zz");
  EXPECT_EQ(QueryUnescape("%4"), "%4");
  EXPECT_EQ(QueryUnescape("%41"), "A");
}

// Pairs come out in order, decoded; empty parts are skipped; a key without '=' has "".
TEST(ParseQueryTest, SplitsAndDecodesInOrder) {
  auto q = ParseQuery("b=2&&a=1&flag&c=x%26y&b=3");
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"b", "2"}));
  EXPECT_EQ(q[1], (std::pair<std::string, std::string>{"a", "1"}));
  EXPECT_EQ(q[2], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_EQ(q[3], (std::pair<std::string, std::string>{"c", "x&y"}));
  EXPECT_EQ(q[4], (std::pair<std::string, std::string>{"b", "3"}));
}

// The first value of a repeated key is the label; keys are case-sensitive.
TEST(LabelsFromQueryTest, FirstValueWinsAndKeysAreCaseSensitive) {
  auto p = LabelsFromQuery("os=talos&os=flatcar&OS=other&uuid=ABC&hostname=Node1");
  EXPECT_EQ(p.labels,
            (Labels{{"os", "talos"}, {"OS", "other"}, {"uuid", "ABC"}, {"hostname", "Node1"}}));
  EXPECT_TRUE(p.dropped_macs.empty());
}

// uuid, hostname and serial are not normalised (only mac is).
TEST(LabelsFromQueryTest, OnlyMacIsNormalised) {
  auto p = LabelsFromQuery("uuid=4C4C4544-0047&serial=AB-CD&hostname=CP1.Example");
  EXPECT_EQ(p.labels.at("uuid"), "4C4C4544-0047");
  EXPECT_EQ(p.labels.at("serial"), "AB-CD");
  EXPECT_EQ(p.labels.at("hostname"), "CP1.Example");
}

// A "mac" key in any case has its value parsed and normalised; the key is kept as sent.
TEST(LabelsFromQueryTest, MacKeyInAnyCaseIsNormalised) {
  EXPECT_EQ(LabelsFromQuery("mac=52-54-00-AB-CD-EF").labels,
            (Labels{{"mac", "52:54:00:ab:cd:ef"}}));
  EXPECT_EQ(LabelsFromQuery("MAC=5254.00ab.cdef").labels, (Labels{{"MAC", "52:54:00:ab:cd:ef"}}));
  EXPECT_EQ(LabelsFromQuery("Mac=52%3A54%3A00%3AAB%3ACD%3AEF").labels,
            (Labels{{"Mac", "52:54:00:ab:cd:ef"}}));
}

// An unparseable MAC is dropped (reported for a warning), other labels stay, so
// the request can still match a group with fewer selectors.
TEST(LabelsFromQueryTest, InvalidMacIsDroppedAndReported) {
  auto p = LabelsFromQuery("mac=not-a-mac&os=talos");
  EXPECT_EQ(p.labels, (Labels{{"os", "talos"}}));
  ASSERT_EQ(p.dropped_macs.size(), 1u);
  EXPECT_EQ(p.dropped_macs[0], "not-a-mac");
}

// The first "mac" value decides even when it is invalid and a later one is valid.
TEST(LabelsFromQueryTest, FirstMacValueDecidesEvenWhenInvalid) {
  auto p = LabelsFromQuery("mac=zz&mac=52:54:00:ab:cd:ef");
  EXPECT_TRUE(p.labels.empty());
  EXPECT_EQ(p.dropped_macs, std::vector<std::string>{"zz"});
}

// Percent-encoded keys and values are decoded before matching.
TEST(LabelsFromQueryTest, PercentDecodesKeysAndValues) {
  auto p = LabelsFromQuery("ro%6Ce=control%2Dplane&zone=eu+west");
  EXPECT_EQ(p.labels, (Labels{{"role", "control-plane"}, {"zone", "eu west"}}));
}

// An empty or absent query gives no labels.
TEST(LabelsFromQueryTest, EmptyQueryGivesNoLabels) {
  EXPECT_TRUE(LabelsFromQuery("").labels.empty());
  EXPECT_TRUE(LabelsFromQuery("&&").labels.empty());
}

}  // namespace
}  // namespace ironboot::bootserver
