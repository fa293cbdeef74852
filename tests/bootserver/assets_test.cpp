// /assets/ building blocks: safe path resolution (no "..", encoded or not, no
// symlinks out, no directories), Range parsing, validators and HTTP dates.

#include "bootserver/assets.h"

#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace ironboot::bootserver {
namespace {

namespace fs = std::filesystem;
using testutil::TempDir;
using testutil::WriteFile;

class ResolveAssetPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "assets/a.txt", "a");
    WriteFile(dir_ / "assets/sub/b.bin", "b");
    WriteFile(dir_ / "secret.txt", "secret");
    WriteFile(dir_ / "assets-evil/f", "evil");
    fs::create_symlink(dir_ / "secret.txt", dir_ / "assets/out-link");
    fs::create_symlink(dir_.path(), dir_ / "assets/out-dir");
    fs::create_symlink("../assets-evil/f", dir_ / "assets/sibling-link");
    fs::create_symlink("sub/b.bin", dir_ / "assets/in-link");
    root_ = fs::canonical(dir_ / "assets");
  }

  void ExpectNotFound(std::string_view rel) {
    auto r = ResolveAssetPath(root_, rel);
    ASSERT_FALSE(r) << rel << " resolved to " << r->string();
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound) << rel;
    EXPECT_NE(r.error().message.find(std::string(rel)), std::string::npos) << r.error().message;
  }

  TempDir dir_;
  fs::path root_;
};

// Plain files, nested files, "." segments, doubled slashes, %2f as a slash and
// symlinks staying inside resolve to the canonical file.
TEST_F(ResolveAssetPathTest, ResolvesFilesInside) {
  for (auto [rel, want] : std::vector<std::pair<std::string, std::string>>{
           {"a.txt", "a.txt"},
           {"sub/b.bin", "sub/b.bin"},
           {"./sub//b.bin", "sub/b.bin"},
           {"sub%2fb.bin", "sub/b.bin"},
           {"%61.txt", "a.txt"},
           {"in-link", "sub/b.bin"},
       }) {
    auto r = ResolveAssetPath(root_, rel);
    ASSERT_TRUE(r) << rel << ": " << r.error().message;
    EXPECT_EQ(*r, root_ / want) << rel;
  }
}

// ".." in any spelling is refused before the file system is touched, even when
// the result would stay inside.
TEST_F(ResolveAssetPathTest, RefusesDotDotInAnySpelling) {
  for (const char* rel :
       {"../secret.txt", "%2e%2e/secret.txt", "%2E%2E/secret.txt", "..%2fsecret.txt",
        "sub/../a.txt", "sub/%2e%2e/%2e%2e/secret.txt", ".."}) {
    ExpectNotFound(rel);
    EXPECT_NE(ResolveAssetPath(root_, rel).error().message.find("escapes"), std::string::npos)
        << rel;
  }
}

// Symlinks resolving outside the root (to a file, a directory, or a sibling
// directory sharing the root's name prefix) are refused.
TEST_F(ResolveAssetPathTest, RefusesSymlinksOut) {
  ExpectNotFound("out-link");
  ExpectNotFound("out-dir/secret.txt");
  ExpectNotFound("sibling-link");
}

// Directories (no listings), the root itself, missing files, bad escapes and
// NUL bytes are all 404.
TEST_F(ResolveAssetPathTest, RefusesDirectoriesMissingAndBadEscapes) {
  ExpectNotFound("sub");
  ExpectNotFound("sub/");
  ExpectNotFound("");
  ExpectNotFound("missing.txt");
  ExpectNotFound("sub/missing");
  ExpectNotFound("a%zz");
  ExpectNotFound("a.txt%00.png");
  ExpectNotFound("a.txt%");
}

// PathUnescape decodes %XX only ('+' stays) and refuses bad escapes and NUL.
TEST(PathUnescapeTest, DecodesPercentOnly) {
  EXPECT_EQ(PathUnescape("a%20b+c"), "a b+c");
  EXPECT_EQ(PathUnescape("%2F%2e"), "/.");
  EXPECT_FALSE(PathUnescape("%"));
  EXPECT_FALSE(PathUnescape("%4"));
  EXPECT_FALSE(PathUnescape("%g0"));
  EXPECT_FALSE(PathUnescape("%00"));
}

// Single ranges in all three forms, clamped to the file.
TEST(ParseRangeTest, SatisfiableForms) {
  auto check = [](std::string_view h, uint64_t first, uint64_t length) {
    RangeResult r = ParseRange(h, 1000);
    ASSERT_EQ(r.kind, RangeKind::kSatisfiable) << h;
    EXPECT_EQ(r.range.first, first) << h;
    EXPECT_EQ(r.range.length, length) << h;
  };
  check("bytes=0-99", 0, 100);
  check("bytes=100-", 100, 900);
  check("bytes=-100", 900, 100);
  check("bytes=-2000", 0, 1000);
  check("bytes=990-2000", 990, 10);
  check("bytes=999-999", 999, 1);
  check("bytes= 5-9 ", 5, 5);
}

// Ranges starting at or past the end (and empty suffixes) are unsatisfiable: 416.
TEST(ParseRangeTest, Unsatisfiable) {
  EXPECT_EQ(ParseRange("bytes=1000-", 1000).kind, RangeKind::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=1000-1001", 1000).kind, RangeKind::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-0", 1000).kind, RangeKind::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=0-", 0).kind, RangeKind::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-5", 0).kind, RangeKind::kUnsatisfiable);
}

// Multi-range and malformed headers are ignored: the whole file is served.
TEST(ParseRangeTest, MultiRangeAndMalformedIgnored) {
  for (const char* h : {"bytes=0-1,5-6", "bytes=0-1, 5-6", "items=0-1", "bytes=5-2", "bytes=a-b",
                        "bytes=", "bytes=-", "bytes=1", "0-1", "bytes=99999999999999999999-"}) {
    EXPECT_EQ(ParseRange(h, 1000).kind, RangeKind::kNone) << h;
  }
}

// If-None-Match: exact, weak, in a list, or "*"; otherwise no match.
TEST(IfNoneMatchTest, WeakComparisonAndLists) {
  const std::string etag = "\"10-abc\"";
  EXPECT_TRUE(IfNoneMatchMatches("\"10-abc\"", etag));
  EXPECT_TRUE(IfNoneMatchMatches("W/\"10-abc\"", etag));
  EXPECT_TRUE(IfNoneMatchMatches("\"x\", \"10-abc\"", etag));
  EXPECT_TRUE(IfNoneMatchMatches("\"x\",W/\"10-abc\" ", etag));
  EXPECT_TRUE(IfNoneMatchMatches("*", etag));
  EXPECT_FALSE(IfNoneMatchMatches("\"10-abd\"", etag));
  EXPECT_FALSE(IfNoneMatchMatches("10-abc", etag));
  EXPECT_FALSE(IfNoneMatchMatches("", etag));
}

// The ETag changes with size and with the modification time (to the nanosecond).
TEST(MakeETagTest, FromSizeAndMtime) {
  using std::chrono::nanoseconds;
  using std::chrono::system_clock;
  FileInfo info{16, system_clock::time_point(
                        std::chrono::duration_cast<system_clock::duration>(nanoseconds(32)))};
  EXPECT_EQ(MakeETag(info), "\"10-20\"");
  FileInfo later = info;
  later.mtime += std::chrono::duration_cast<system_clock::duration>(nanoseconds(1));
  EXPECT_NE(MakeETag(later), MakeETag(info));
  FileInfo bigger = info;
  bigger.size = 17;
  EXPECT_NE(MakeETag(bigger), MakeETag(info));
}

// IMF-fixdate formatting, parsing, and a round trip (to the second).
TEST(HttpDateTest, FormatParseRoundTrip) {
  auto t = std::chrono::system_clock::from_time_t(784111777);
  EXPECT_EQ(HttpDate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
  auto parsed = ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, t);
  auto now = std::chrono::system_clock::now();
  auto back = ParseHttpDate(HttpDate(now));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, std::chrono::floor<std::chrono::seconds>(now));
  EXPECT_FALSE(ParseHttpDate("yesterday"));
  EXPECT_FALSE(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT and more"));
  EXPECT_FALSE(ParseHttpDate(""));
  // Past year 2262 a date does not fit system_clock's nanoseconds: treated as
  // invalid instead of overflowing (UBSan: signed overflow in from_time_t).
  EXPECT_FALSE(ParseHttpDate("Fri, 01 Jan 2300 00:00:00 GMT"));
  EXPECT_FALSE(ParseHttpDate("Mon, 01 Jan 9999 00:00:00 GMT"));
  EXPECT_TRUE(ParseHttpDate("Fri, 01 Jan 2100 00:00:00 GMT"));
}

// Content types by extension; unknown ones are application/octet-stream.
TEST(ContentTypeForTest, ByExtension) {
  EXPECT_EQ(ContentTypeFor("talos/controlplane1.yaml"), "application/yaml");
  EXPECT_EQ(ContentTypeFor("initramfs.xz"), "application/x-xz");
  EXPECT_EQ(ContentTypeFor("boot.ipxe"), "text/plain; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("vmlinuz"), "application/octet-stream");
  EXPECT_EQ(ContentTypeFor("x.unknown"), "application/octet-stream");
}

}  // namespace
}  // namespace ironboot::bootserver
