#include "bootserver/assets.h"

#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <map>

namespace ironboot::bootserver {
namespace fs = std::filesystem;

namespace {
int Hex(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}
}  // namespace

std::optional<std::string> PathUnescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || Hex(s[i + 1]) < 0 || Hex(s[i + 2]) < 0) {
        return std::nullopt;
      }
      c = static_cast<char>(Hex(s[i + 1]) * 16 + Hex(s[i + 2]));
      i += 2;
    }
    if (c == '\0') {
      return std::nullopt;
    }
    out += c;
  }
  return out;
}

Result<fs::path> ResolveAssetPath(const fs::path& root, std::string_view rel) {
  auto not_found = [&](const std::string& why) {
    return Fail(ErrorCode::kNotFound, "asset \"" + std::string(rel) + "\": " + why);
  };
  auto decoded = PathUnescape(rel);
  if (!decoded) {
    return not_found("bad percent-encoding");
  }
  // Reject any ".." segment outright, before touching the file system.
  fs::path joined = root;
  size_t start = 0;
  const std::string& d = *decoded;
  while (start <= d.size()) {
    size_t slash = d.find('/', start);
    std::string seg = d.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (seg == "..") {
      return not_found("path escapes the assets directory");
    }
    if (!seg.empty() && seg != ".") {
      joined /= seg;
    }
    if (slash == std::string::npos) {
      break;
    }
    start = slash + 1;
  }
  std::error_code ec;
  fs::path real = fs::canonical(joined, ec);
  if (ec) {
    return not_found("no such file");
  }
  // The resolved file must stay under root (symlinks pointing out are refused).
  auto r = root.native();
  const auto& p = real.native();
  if (p.size() <= r.size() || p.compare(0, r.size(), r) != 0 || p[r.size()] != '/') {
    return not_found("path escapes the assets directory");
  }
  if (!fs::is_regular_file(real, ec)) {
    return not_found("not a regular file");
  }
  return real;
}

std::string MakeETag(const FileInfo& info) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(info.mtime.time_since_epoch()).count();
  char buf[64];
  std::snprintf(buf, sizeof(buf), "\"%llx-%llx\"", static_cast<unsigned long long>(info.size),
                static_cast<unsigned long long>(ns));
  return buf;
}

std::string HttpDate(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::optional<std::chrono::system_clock::time_point> ParseHttpDate(std::string_view s) {
  std::tm tm{};
  std::string str(s);
  const char* end = strptime(str.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') {
    return std::nullopt;
  }
  // system_clock counts nanoseconds in 64 bits: years past 2262 (or before
  // 1677) do not fit, and from_time_t would overflow. Such a date is as good
  // as invalid (RFC 9110 13.1.3: ignore the header).
  std::time_t t = timegm(&tm);
  using Seconds = std::chrono::seconds;
  const auto limit = std::chrono::duration_cast<Seconds>(
                         std::chrono::system_clock::time_point::max().time_since_epoch())
                         .count() - 1;
  if (t > limit || t < -limit) {
    return std::nullopt;
  }
  return std::chrono::system_clock::time_point(Seconds(t));
}

RangeResult ParseRange(std::string_view header, uint64_t size) {
  RangeResult none;
  constexpr std::string_view kPrefix = "bytes=";
  if (header.substr(0, kPrefix.size()) != kPrefix) {
    return none;
  }
  std::string_view spec = header.substr(kPrefix.size());
  while (!spec.empty() && spec.front() == ' ') {
    spec.remove_prefix(1);
  }
  while (!spec.empty() && spec.back() == ' ') {
    spec.remove_suffix(1);
  }
  if (spec.find(',') != std::string_view::npos) {
    return none;  // multi-range: serve the whole file
  }
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) {
    return none;
  }
  auto parse = [](std::string_view digits, uint64_t& out) {
    if (digits.empty() || digits.size() > 19) {
      return false;
    }
    out = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') {
        return false;
      }
      out = out * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
  };
  std::string_view a = spec.substr(0, dash);
  std::string_view b = spec.substr(dash + 1);
  RangeResult r;
  if (a.empty()) {  // suffix: last n bytes
    uint64_t n = 0;
    if (!parse(b, n)) {
      return none;
    }
    if (n == 0 || size == 0) {
      r.kind = RangeKind::kUnsatisfiable;
      return r;
    }
    n = std::min(n, size);
    r.kind = RangeKind::kSatisfiable;
    r.range = {size - n, n};
    return r;
  }
  uint64_t first = 0;
  if (!parse(a, first)) {
    return none;
  }
  uint64_t last = size == 0 ? 0 : size - 1;
  if (!b.empty()) {
    if (!parse(b, last) || last < first) {
      return none;
    }
    last = std::min(last, size == 0 ? 0 : size - 1);
  }
  if (first >= size) {
    r.kind = RangeKind::kUnsatisfiable;
    return r;
  }
  r.kind = RangeKind::kSatisfiable;
  r.range = {first, last - first + 1};
  return r;
}

bool IfNoneMatchMatches(std::string_view header, std::string_view etag) {
  auto strip_weak = [](std::string_view t) {
    if (t.substr(0, 2) == "W/") {
      t.remove_prefix(2);
    }
    return t;
  };
  std::string_view want = strip_weak(etag);
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') {
      item.remove_prefix(1);
    }
    while (!item.empty() && item.back() == ' ') {
      item.remove_suffix(1);
    }
    if (item == "*" || strip_weak(item) == want) {
      return true;
    }
  }
  return false;
}

std::string_view ContentTypeFor(const fs::path& path) {
  static const std::map<std::string, std::string_view> kTypes = {
      {".txt", "text/plain; charset=utf-8"},
      {".ipxe", "text/plain; charset=utf-8"},
      {".yaml", "application/yaml"},
      {".yml", "application/yaml"},
      {".json", "application/json"},
      {".ign", "application/json"},
      {".html", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".xz", "application/x-xz"},
      {".gz", "application/gzip"},
      {".zst", "application/zstd"},
      {".iso", "application/x-iso9660-image"},
      {".tar", "application/x-tar"},
      {".sig", "application/pgp-signature"},
      {".asc", "application/pgp-signature"},
  };
  auto it = kTypes.find(path.extension().string());
  return it == kTypes.end() ? std::string_view("application/octet-stream") : it->second;
}

}  // namespace ironboot::bootserver
