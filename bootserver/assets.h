#pragma once
// bootserver/: static assets under /assets/: safe path resolution, HTTP
// conditional and range request logic. Pure except ResolveAssetPath (stat/realpath).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace ironboot::bootserver {

// Decodes %XX in a URL path (no '+' rule). nullopt on a bad escape or a NUL byte.
std::optional<std::string> PathUnescape(std::string_view s);

// Maps `rel` (the request path after "/assets/", still percent-encoded) to a
// regular file inside `root`. kNotFound for anything else: missing files,
// directories (no listings), ".." segments (also when percent-encoded), and
// symlinks resolving outside `root`. `root` must be canonical.
Result<std::filesystem::path> ResolveAssetPath(const std::filesystem::path& root,
                                               std::string_view rel);

struct FileInfo {
  uint64_t size = 0;
  std::chrono::system_clock::time_point mtime;
};

// A strong validator from size and modification time: "\"<size>-<mtime ns>\"" in hex.
std::string MakeETag(const FileInfo& info);

// RFC 7231 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string HttpDate(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> ParseHttpDate(std::string_view s);

struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;
};
enum class RangeKind { kNone, kSatisfiable, kUnsatisfiable };
struct RangeResult {
  RangeKind kind = RangeKind::kNone;
  ByteRange range;
};
// Parses a Range header against a file of `size` bytes. One range only
// ("bytes=a-b", "bytes=a-", "bytes=-n"); a multi-range or malformed header is
// ignored (kNone: the whole file, as RFC 7233 allows).
RangeResult ParseRange(std::string_view header, uint64_t size);

// True when an If-None-Match header value matches `etag` ("*" or a list;
// weak comparison, as RFC 7232 says for If-None-Match).
bool IfNoneMatchMatches(std::string_view header, std::string_view etag);

// Content type from the file extension; application/octet-stream otherwise.
std::string_view ContentTypeFor(const std::filesystem::path& path);

}  // namespace ironboot::bootserver
