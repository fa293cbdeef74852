#include "reconcilers/sha512.h"

#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace ironboot::reconcilers {
namespace {

constexpr char kAbcSha512[] =
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

std::string Hex(char c) {
  return std::string(kSha512HexLength, c);
}

// The hasher matches the FIPS 180-2 "abc" vector, also when fed in pieces and
// after Reset, and HexDigest does not end the stream.
TEST(Sha512Test, KnownVectorStreamingAndReset) {
  EXPECT_EQ(Sha512Hex("abc"), kAbcSha512);
  Sha512 hasher;
  hasher.Update("xyz");
  hasher.Reset();
  hasher.Update("a");
  EXPECT_NE(hasher.HexDigest(), kAbcSha512);
  hasher.Update("bc");
  EXPECT_EQ(hasher.HexDigest(), kAbcSha512);
}

// Hashing a file gives the content's hash; a missing file is kNotFound naming it.
TEST(Sha512Test, FileHashAndMissingFile) {
  testutil::TempDir dir;
  testutil::WriteFile(dir / "f", "abc");
  auto hex = Sha512OfFile(dir / "f");
  ASSERT_TRUE(hex) << hex.error().message;
  EXPECT_EQ(*hex, kAbcSha512);
  auto missing = Sha512OfFile(dir / "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find((dir / "nope").string()), std::string::npos);
}

// Only exactly 128 hex digits count as a SHA-512.
TEST(Sha512Test, IsSha512Hex) {
  EXPECT_TRUE(IsSha512Hex(kAbcSha512));
  EXPECT_TRUE(IsSha512Hex(Hex('A')));
  EXPECT_FALSE(IsSha512Hex(Hex('a').substr(1)));
  EXPECT_FALSE(IsSha512Hex(Hex('a') + "a"));
  EXPECT_FALSE(IsSha512Hex(Hex('g')));
  EXPECT_FALSE(IsSha512Hex(""));
}

// Text-mode and binary-mode lines, CRLF, blank lines and "./" prefixes parse;
// hashes come back lowercase.
TEST(Sha512SumsTest, ParsesBothModes) {
  const std::string text = Hex('A') + "  vmlinuz-amd64\r\n\n" + Hex('b') +
                           " *initramfs-amd64.xz\n" + Hex('c') + "  ./talos-amd64.iso\n" +
                           Hex('d') + "  name with spaces";
  auto sums = ParseSha512Sums(text, "sha512sum.txt");
  ASSERT_TRUE(sums) << sums.error().message;
  ASSERT_EQ(sums->size(), 4u);
  EXPECT_EQ(sums->at("vmlinuz-amd64"), Hex('a'));
  EXPECT_EQ(sums->at("initramfs-amd64.xz"), Hex('b'));
  EXPECT_EQ(sums->at("talos-amd64.iso"), Hex('c'));
  EXPECT_EQ(sums->at("name with spaces"), Hex('d'));
}

// A malformed line is kInvalid naming the source, the line number, the
// expected shape and the line itself.
TEST(Sha512SumsTest, BadLineNamesSourceAndLine) {
  const std::string text = Hex('a') + "  vmlinuz-amd64\n\n<html>Not Found</html>\n";
  auto sums = ParseSha512Sums(text, "https://example.com/sha512sum.txt");
  ASSERT_FALSE(sums);
  EXPECT_EQ(sums.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(sums.error().message,
            "https://example.com/sha512sum.txt:3: want \"<128 hex digits>  <file name>\" or "
            "\"<128 hex digits> *<file name>\", got \"<html>Not Found</html>\"");
}

// A short hash, a single space separator and a missing name are each rejected.
TEST(Sha512SumsTest, RejectsNearMisses) {
  for (const std::string& line : {Hex('a').substr(2) + "  short", Hex('a') + " single-space",
                                  Hex('a') + "  ", Hex('a') + "\tvmlinuz"}) {
    auto sums = ParseSha512Sums(line, "s.txt");
    EXPECT_FALSE(sums) << line;
    if (!sums) {
      EXPECT_TRUE(sums.error().message.starts_with("s.txt:1: ")) << sums.error().message;
    }
  }
}

// A name listed twice with different hashes is an error naming the name and
// both hashes; an identical repeated line is accepted.
TEST(Sha512SumsTest, ConflictingDuplicate) {
  const std::string line = Hex('a') + "  vmlinuz-amd64\n";
  EXPECT_TRUE(ParseSha512Sums(line + line, "s.txt"));
  auto sums = ParseSha512Sums(line + Hex('b') + " *vmlinuz-amd64\n", "s.txt");
  ASSERT_FALSE(sums);
  EXPECT_EQ(sums.error().message,
            "s.txt:2: \"vmlinuz-amd64\" is listed again with a different hash (bbbbbbbbbbbbbbbb... "
            "here, aaaaaaaaaaaaaaaa... before)");
}

}  // namespace
}  // namespace ironboot::reconcilers
