#pragma once
// manifests/: parsers for the scalar values a cluster repo holds (MAC
// addresses, IP addresses and prefixes, Talos versions, names, URLs). Each
// returns the parsed value or a short reason ("want 6 octets") that a
// diagnostic appends to the bad value.

#include <array>
#include <compare>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ironboot::manifests {

// Why a value did not parse: completes `"<value>" is not a <what> (<reason>)`.
struct ValueError {
  std::string what;    // "a MAC address"
  std::string reason;  // "want 6 octets"
};

template <class T>
using ValueResult = std::expected<T, ValueError>;

// A 48-bit MAC in colons, hyphens, dotted (0023.24e7.2940) or bare 12-hex
// notation; returned lowercase with colons ("00:23:24:e7:29:40").
ValueResult<std::string> ParseMac(std::string_view text);

// An IPv4 or IPv6 address, optionally with a prefix length.
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4

  std::string ToString() const;
  auto operator<=>(const IpAddress&) const = default;
};

struct IpPrefix {
  IpAddress address;
  int prefix_length = -1;  // -1: none given

  int max_length() const { return address.v6 ? 128 : 32; }
  // True if `ip` is inside this prefix (same family, same leading bits).
  bool Contains(const IpAddress& ip) const;
  // The address with its prefix, "10.0.4.101/24" (no suffix when none given).
  std::string ToString() const;
};

ValueResult<IpAddress> ParseIp(std::string_view text);
// "10.0.4.101/24" or, when `prefix_required` is false, also "10.0.4.101".
ValueResult<IpPrefix> ParseIpPrefix(std::string_view text, bool prefix_required);

// A Talos version "vMAJOR.MINOR.PATCH[-pre]" (the release tag). `text` keeps
// the original spelling; `Plain()` drops the "v" ("1.11.3"), as the seed's
// asset paths do.
struct TalosVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
  std::string prerelease;
  std::string text;

  std::string Plain() const { return text.substr(1); }
  std::string Minor() const { return "v" + std::to_string(major) + "." + std::to_string(minor); }
};
ValueResult<TalosVersion> ParseTalosVersion(std::string_view text);

// A Kubernetes version "1.34.1" or "v1.34.1".
ValueResult<std::string> ParseKubernetesVersion(std::string_view text);

// A DNS-1123 label (lowercase alphanumerics and '-', at most 63): machine
// names become hostnames and file names.
std::optional<ValueError> CheckDnsLabel(std::string_view text);

// An absolute http(s) URL with a host; returns it without a trailing "/".
ValueResult<std::string> ParseHttpUrl(std::string_view text, bool https_only = false);

// A duration "30s", "10m", "1h30m" in seconds.
ValueResult<int64_t> ParseDuration(std::string_view text);

// The candidate closest to `word` by edit distance (case-insensitive), if
// close enough to be a plausible typo; empty otherwise.
std::string NearestWord(std::string_view word, const std::vector<std::string>& candidates);

// `s` as a double-quoted string for messages.
std::string Quote(std::string_view s);

}  // namespace ironboot::manifests
