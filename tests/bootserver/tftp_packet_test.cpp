#include "bootserver/tftp_packet.h"

#include <random>

#include <gtest/gtest.h>

namespace ironboot::bootserver {
namespace {

std::vector<uint8_t> Bytes(std::string_view s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

TftpRequest Rrq(std::string filename, std::string mode, TftpOptionList options = {}) {
  return TftpRequest{TftpOpcode::kReadRequest, std::move(filename), std::move(mode),
                     std::move(options)};
}

// A read request with options survives encode/decode, with option names lowercased.
TEST(TftpPacket, RequestRoundTripLowercasesOptionNames) {
  auto wire = EncodeTftpRequest(Rrq("undionly.kpxe", "OCTET", {{"BLKSIZE", "1428"}}));
  auto parsed = ParseTftpPacket(wire);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(std::get<TftpRequest>(*parsed), Rrq("undionly.kpxe", "octet", {{"blksize", "1428"}}));
}

// The exact bytes RFC 1350 specifies for DATA, ACK and ERROR.
TEST(TftpPacket, EncodesDataAckErrorAsRfc1350) {
  std::vector<uint8_t> payload = {'h', 'i'};
  EXPECT_EQ(EncodeTftpData(0x0102, payload), (std::vector<uint8_t>{0, 3, 1, 2, 'h', 'i'}));
  EXPECT_EQ(EncodeTftpAck(7), (std::vector<uint8_t>{0, 4, 0, 7}));
  EXPECT_EQ(EncodeTftpError(TftpErrorCode::kFileNotFound, "nope"),
            (std::vector<uint8_t>{0, 5, 0, 1, 'n', 'o', 'p', 'e', 0}));
  EXPECT_EQ(EncodeTftpOptionAck({{"tsize", "12"}}),
            (std::vector<uint8_t>{0, 6, 't', 's', 'i', 'z', 'e', 0, '1', '2', 0}));
}

// DATA, ACK, ERROR and OACK decode back to what was encoded.
TEST(TftpPacket, DecodesEveryServerPacket) {
  std::vector<uint8_t> payload = {0, 1, 2};
  EXPECT_EQ(std::get<TftpData>(*ParseTftpPacket(EncodeTftpData(65535, payload))),
            (TftpData{65535, std::string("\0\1\2", 3)}));
  EXPECT_EQ(std::get<TftpAck>(*ParseTftpPacket(EncodeTftpAck(3))), TftpAck{3});
  EXPECT_EQ(std::get<TftpErrorPacket>(
                *ParseTftpPacket(EncodeTftpError(TftpErrorCode::kAccessViolation, "no"))),
            (TftpErrorPacket{TftpErrorCode::kAccessViolation, "no"}));
  EXPECT_EQ(std::get<TftpOptionAck>(*ParseTftpPacket(EncodeTftpOptionAck({{"blksize", "8"}}))),
            (TftpOptionAck{{{"blksize", "8"}}}));
}

// An ERROR whose message lacks the final NUL is still understood.
TEST(TftpPacket, AcceptsErrorWithoutTerminator) {
  auto parsed = ParseTftpPacket(Bytes(std::string("\0\5\0\0abc", 7)));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(std::get<TftpErrorPacket>(*parsed).message, "abc");
}

// Malformed datagrams are refused with a message saying what is wrong.
TEST(TftpPacket, RefusesMalformedPackets) {
  struct Case {
    std::string bytes;
    std::string want;
  };
  const std::vector<Case> cases = {
      {std::string("\0", 1), "packet too short (1 bytes, want at least 2)"},
      {std::string("\0\11", 2), "unknown opcode 9"},
      {std::string("\0\1file", 6), "request: string 1 is not NUL-terminated"},
      {std::string("\0\1file\0", 7), "request has no mode"},
      {std::string("\0\1", 2), "request has no filename"},
      {std::string("\0\1\0octet\0", 9), "request has an empty filename"},
      {std::string("\0\1f\0octet\0blksize\0", 18), "request: option \"blksize\" has no value"},
      {std::string("\0\1f\0octet\0\0x\0", 13), "request: empty option name"},
      {std::string("\0\4\0", 3), "ACK packet is 3 bytes (want 4)"},
      {std::string("\0\3\0", 3), "DATA packet has no block number"},
      {std::string("\0\5", 2), "ERROR packet has no error code"},
      {std::string("\0\6x", 3), "OACK: string 1 is not NUL-terminated"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseTftpPacket(Bytes(c.bytes));
    ASSERT_FALSE(parsed) << c.want;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(parsed.error().message, c.want);
  }
}

// An ERROR message is cut so the datagram stays within RFC 1350's 516 bytes.
TEST(TftpPacket, ErrorMessageCut) {
  auto wire = EncodeTftpError(TftpErrorCode::kFileNotFound, std::string(4000, 'a'));
  EXPECT_EQ(wire.size(), 4 + kTftpMaxErrorMessage + 1);
  EXPECT_LE(wire.size(), 516u);
  EXPECT_EQ(std::get<TftpErrorPacket>(*ParseTftpPacket(wire)).message,
            std::string(kTftpMaxErrorMessage, 'a'));
}

// Hostile requests: a value without its NUL is refused; numbers too big for any
// integer, negative or padded are ignored; mode and names are case-insensitive.
TEST(TftpPacket, HostileRequests) {
  auto unterminated =
      ParseTftpPacket(Bytes(std::string("\0\1f\0octet\0blksize\0"
                                        "1428",
                                        22)));
  ASSERT_FALSE(unterminated);
  EXPECT_EQ(unterminated.error().message, "request: string 4 is not NUL-terminated");
  auto parsed = ParseTftpPacket(EncodeTftpRequest(Rrq("f", "NetAscii",
                                                      {{"BLKSIZE", "184467440737095516160"},
                                                       {"windowsize", "65536"},
                                                       {"TIMEOUT", "-1"},
                                                       {"tsize", " 0"}})));
  ASSERT_TRUE(parsed) << parsed.error().message;
  const auto& request = std::get<TftpRequest>(*parsed);
  EXPECT_EQ(request.mode, "netascii");
  auto n = NegotiateTftpOptions(request.options, TftpLimits{}, 10);
  EXPECT_TRUE(n.acknowledged.empty());
  EXPECT_EQ(n.block_size, 512);
  EXPECT_EQ(n.window_size, 1);
}

// Random datagrams (every opcode, random strings and lengths) never crash the parser
// or the negotiation, and whatever parses negotiates within the limits.
TEST(TftpPacket, RandomDatagramsAreSafe) {
  std::mt19937 rng(7);
  TftpLimits limits;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> datagram(rng() % 600);
    for (auto& b : datagram) {
      // Mostly NULs, digits and option letters, so requests with options come up often.
      const uint32_t r = rng() % 8;
      b = r < 2 ? 0 : r < 4 ? static_cast<uint8_t>('0' + rng() % 10) : static_cast<uint8_t>(rng());
    }
    if (datagram.size() >= 2) {
      datagram[0] = 0;
      datagram[1] = static_cast<uint8_t>(rng() % 8);
    }
    auto parsed = ParseTftpPacket(datagram);
    if (parsed && std::holds_alternative<TftpRequest>(*parsed)) {
      auto n = NegotiateTftpOptions(std::get<TftpRequest>(*parsed).options, limits, 1);
      EXPECT_LE(n.block_size, kTftpMaxBlockSize);
      EXPECT_GE(n.window_size, 1);
      EXPECT_LE(static_cast<uint64_t>(n.window_size) * n.block_size,
                std::max<uint64_t>(limits.max_window_bytes, n.block_size));
    }
  }
}

// No options requested: no OACK, RFC 1350 defaults.
TEST(TftpNegotiate, NoOptionsMeansNoOack) {
  auto n = NegotiateTftpOptions({}, TftpLimits{}, 100);
  EXPECT_TRUE(n.acknowledged.empty());
  EXPECT_EQ(n.block_size, 512);
  EXPECT_EQ(n.window_size, 1);
  EXPECT_FALSE(n.timeout);
}

// tsize 0 in a read request is answered with the file size (RFC 2349).
TEST(TftpNegotiate, TsizeZeroGetsTheSize) {
  auto n = NegotiateTftpOptions({{"tsize", "0"}}, TftpLimits{}, 74213);
  EXPECT_EQ(n.acknowledged, (TftpOptionList{{"tsize", "74213"}}));
  // Unknown size: tsize is left out, so no OACK at all.
  EXPECT_TRUE(
      NegotiateTftpOptions({{"tsize", "0"}}, TftpLimits{}, std::nullopt).acknowledged.empty());
}

// blksize: 8..65464 accepted, lowered to the server's maximum, below 8 or junk ignored.
TEST(TftpNegotiate, BlksizeRange) {
  TftpLimits limits;
  limits.max_block_size = 1468;
  EXPECT_EQ(NegotiateTftpOptions({{"blksize", "1428"}}, limits, 1).block_size, 1428);
  auto big = NegotiateTftpOptions({{"blksize", "65464"}}, limits, 1);
  EXPECT_EQ(big.block_size, 1468);
  EXPECT_EQ(big.acknowledged, (TftpOptionList{{"blksize", "1468"}}));
  EXPECT_EQ(NegotiateTftpOptions({{"blksize", "8"}}, limits, 1).block_size, 8);
  for (std::string bad : {"7", "0", "-1", "abc", "", "1428 ", "99999999999999999999999"}) {
    auto n = NegotiateTftpOptions({{"blksize", bad}}, limits, 1);
    EXPECT_EQ(n.block_size, 512) << bad;
    EXPECT_TRUE(n.acknowledged.empty()) << bad;
  }
  EXPECT_EQ(NegotiateTftpOptions({{"blksize", "65464"}}, TftpLimits{}, 1).block_size, 65464);
}

// timeout: 1..max_timeout_seconds (5) accepted unchanged; longer values (RFC 2349 allows
// up to 255) are left out of the OACK, since RFC 2349 forbids answering another value.
TEST(TftpNegotiate, TimeoutRange) {
  auto n = NegotiateTftpOptions({{"timeout", "3"}}, TftpLimits{}, 1);
  EXPECT_EQ(n.timeout, std::chrono::seconds(3));
  EXPECT_EQ(n.acknowledged, (TftpOptionList{{"timeout", "3"}}));
  EXPECT_EQ(NegotiateTftpOptions({{"timeout", "5"}}, TftpLimits{}, 1).timeout,
            std::chrono::seconds(5));
  for (std::string bad : {"0", "6", "255", "256", "x", "99999999999999999999999"}) {
    auto refused = NegotiateTftpOptions({{"timeout", bad}, {"tsize", "0"}}, TftpLimits{}, 1);
    EXPECT_FALSE(refused.timeout) << bad;
    EXPECT_EQ(refused.acknowledged, (TftpOptionList{{"tsize", "1"}})) << bad;
  }
  TftpLimits limits;
  limits.max_timeout_seconds = 255;
  EXPECT_EQ(NegotiateTftpOptions({{"timeout", "255"}}, limits, 1).timeout,
            std::chrono::seconds(255));
}

// windowsize x blksize is bounded by max_window_bytes (the window is kept in memory),
// whichever order the two options come in; at least one block.
TEST(TftpNegotiate, WindowBoundedByMemory) {
  TftpLimits limits;  // 128 KiB, max_window_size 64
  auto big = NegotiateTftpOptions({{"windowsize", "64"}, {"blksize", "65464"}}, limits, 1);
  EXPECT_EQ(big.block_size, 65464);
  EXPECT_EQ(big.window_size, 2);
  EXPECT_EQ(big.acknowledged, (TftpOptionList{{"windowsize", "2"}, {"blksize", "65464"}}));
  EXPECT_EQ(
      NegotiateTftpOptions({{"blksize", "2048"}, {"windowsize", "64"}}, limits, 1).window_size, 64);
  EXPECT_EQ(
      NegotiateTftpOptions({{"blksize", "8192"}, {"windowsize", "64"}}, limits, 1).window_size, 16);
  limits.max_window_bytes = 1000;
  auto one = NegotiateTftpOptions({{"blksize", "1428"}, {"windowsize", "8"}}, limits, 1);
  EXPECT_EQ(one.window_size, 1);
  EXPECT_EQ(one.acknowledged, (TftpOptionList{{"blksize", "1428"}, {"windowsize", "1"}}));
}

// A repeated option: only the first occurrence counts, even when it is refused.
TEST(TftpNegotiate, RepeatedOptionFirstCounts) {
  auto n = NegotiateTftpOptions({{"blksize", "1000"}, {"blksize", "2000"}}, TftpLimits{}, 1);
  EXPECT_EQ(n.block_size, 1000);
  EXPECT_EQ(n.acknowledged, (TftpOptionList{{"blksize", "1000"}}));
  auto refused = NegotiateTftpOptions({{"blksize", "x"}, {"blksize", "2000"}}, TftpLimits{}, 1);
  EXPECT_EQ(refused.block_size, 512);
  EXPECT_TRUE(refused.acknowledged.empty());
  auto parsed =
      ParseTftpPacket(Bytes(std::string("\0\1f\0octet\0WindowSize\0"
                                        "4\0windowsize\0"
                                        "64\0",
                                        37)));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(
      NegotiateTftpOptions(std::get<TftpRequest>(*parsed).options, TftpLimits{}, 1).window_size, 4);
}

// windowsize is lowered to the server's limit, and not offered when the limit is 1.
TEST(TftpNegotiate, WindowsizeRange) {
  TftpLimits limits;
  limits.max_window_size = 16;
  EXPECT_EQ(NegotiateTftpOptions({{"windowsize", "4"}}, limits, 1).window_size, 4);
  EXPECT_EQ(NegotiateTftpOptions({{"windowsize", "64"}}, limits, 1).window_size, 16);
  EXPECT_TRUE(NegotiateTftpOptions({{"windowsize", "0"}}, limits, 1).acknowledged.empty());
  limits.max_window_size = 1;
  auto off = NegotiateTftpOptions({{"windowsize", "4"}}, limits, 1);
  EXPECT_EQ(off.window_size, 1);
  EXPECT_TRUE(off.acknowledged.empty());
}

// Unknown options are ignored; known ones are acknowledged in the client's order.
TEST(TftpNegotiate, UnknownOptionsIgnoredOrderKept) {
  auto n = NegotiateTftpOptions(
      {{"multicast", ""}, {"tsize", "0"}, {"x-vendor", "1"}, {"blksize", "1432"}}, TftpLimits{},
      42);
  EXPECT_EQ(n.acknowledged, (TftpOptionList{{"tsize", "42"}, {"blksize", "1432"}}));
}

// netascii turns LF into CR LF and CR into CR NUL, and the size matches.
TEST(TftpNetascii, ConvertsLineEnds) {
  std::string out;
  AppendNetascii("a\nb\rc", out);
  EXPECT_EQ(out, std::string("a\r\nb\r\0c", 7));
  EXPECT_EQ(NetasciiSize("a\nb\rc"), 7u);
}

}  // namespace
}  // namespace ironboot::bootserver
