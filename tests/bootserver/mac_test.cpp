// NormalizeMac: every notation Matchbox (Go's net.ParseMAC) accepts, and the
// near misses it refuses.

#include "bootserver/mac.h"

#include <gtest/gtest.h>

namespace ironboot::bootserver {
namespace {

// Colon, hyphen and dotted 6-octet forms, any case, all normalise to lowercase colons.
TEST(NormalizeMacTest, AcceptsEveryNotationOfSixOctets) {
  const std::string want = "52:54:00:ab:cd:ef";
  for (const char* in :
       {"52:54:00:ab:cd:ef", "52:54:00:AB:CD:EF", "52-54-00-ab-cd-ef", "52-54-00-AB-CD-EF",
        "5254.00ab.cdef", "5254.00AB.CDEF", "52:54:00:aB:Cd:eF"}) {
    auto got = NormalizeMac(in);
    ASSERT_TRUE(got.has_value()) << in;
    EXPECT_EQ(*got, want) << in;
  }
}

// EUI-64 (8 octets) in all three notations.
TEST(NormalizeMacTest, AcceptsEightOctets) {
  const std::string want = "02:00:5e:10:00:00:00:01";
  for (const char* in :
       {"02:00:5e:10:00:00:00:01", "02-00-5E-10-00-00-00-01", "0200.5e10.0000.0001"}) {
    auto got = NormalizeMac(in);
    ASSERT_TRUE(got.has_value()) << in;
    EXPECT_EQ(*got, want) << in;
  }
}

// 20-octet IP-over-InfiniBand addresses in all three notations.
TEST(NormalizeMacTest, AcceptsTwentyOctets) {
  const std::string want = "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01";
  for (const char* in : {"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01",
                         "00-00-00-00-FE-80-00-00-00-00-00-00-02-00-5E-10-00-00-00-01",
                         "0000.0000.fe80.0000.0000.0000.0200.5e10.0000.0001"}) {
    auto got = NormalizeMac(in);
    ASSERT_TRUE(got.has_value()) << in;
    EXPECT_EQ(*got, want) << in;
  }
}

// Everything Go's ParseMAC refuses is refused: wrong lengths, mixed
// separators, non-hex digits, single-digit octets, other octet counts.
TEST(NormalizeMacTest, RefusesMalformedAddresses) {
  for (const char* in : {
           "",
           "52:54:00:ab:cd",                 // 5 octets
           "52:54:00:ab:cd:ef:01",           // 7 octets
           "52:54:00:ab:cd:ef:",             // trailing separator
           "52:54:00-ab:cd:ef",              // mixed separators
           "52:54:00:ab:cd:eg",              // not hex
           "5:54:00:ab:cd:ef0",              // one-digit octet
           "525400abcdef",                   // no separators
           "52.54.00.ab.cd.ef",              // dots between octets
           "5254.00ab.cdef.",                // trailing dot
           "5254:00ab:cdef",                 // colon in dotted form
           "5254.00ab.cdeg",                 // not hex in dotted form
           "52:54:00:ab:cd:ef:00:11:22:33",  // 10 octets
           " 52:54:00:ab:cd:ef",             // leading space
           "52:54:00:ab:cd:ef ",             // trailing space
       }) {
    EXPECT_FALSE(NormalizeMac(in).has_value()) << "\"" << in << "\"";
  }
}

}  // namespace
}  // namespace ironboot::bootserver
