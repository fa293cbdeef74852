#include "manifests/values.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace ironboot::manifests {
namespace {

bool IsHex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

char Lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::optional<int> ParseUint(std::string_view s) {
  if (s.empty() || s.size() > 9) {
    return std::nullopt;
  }
  int value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

ValueResult<std::string> ParseMac(std::string_view text) {
  const ValueError bad_digit{"a MAC address", "want hex digits, e.g. 00:23:24:e7:29:40"};
  std::string hex;
  char separator = 0;
  for (char c : text) {
    if (c == ':' || c == '-' || c == '.') {
      if (separator != 0 && separator != c) {
        return std::unexpected(ValueError{"a MAC address", "mixes separators"});
      }
      separator = c;
    } else if (IsHex(c)) {
      hex += Lower(c);
    } else {
      return std::unexpected(bad_digit);
    }
  }
  // Group sizes must match the notation: 2 hex digits per group for ':'/'-',
  // 4 for '.', or 12 bare digits.
  size_t group_len = 0;
  bool uneven = false;
  size_t want = separator == '.' ? 4 : 2;
  for (char c : text) {
    if (c == separator) {
      uneven |= group_len != want;
      group_len = 0;
    } else {
      ++group_len;
    }
  }
  uneven |= separator != 0 && group_len != want;
  if (hex.size() != 12) {
    return std::unexpected(ValueError{"a MAC address", "want 6 octets"});
  }
  if (uneven) {
    return std::unexpected(ValueError{"a MAC address", separator == '.'
                                                           ? "want 3 groups of 4 hex digits"
                                                           : "want 6 groups of 2 hex digits"});
  }
  std::string out;
  for (size_t i = 0; i < 12; i += 2) {
    if (!out.empty()) {
      out += ':';
    }
    out += hex.substr(i, 2);
  }
  return out;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

bool IpPrefix::Contains(const IpAddress& ip) const {
  if (ip.v6 != address.v6) {
    return false;
  }
  int bits = prefix_length < 0 ? max_length() : prefix_length;
  for (int i = 0; i < bits; ++i) {
    int byte = i / 8;
    int mask = 0x80 >> (i % 8);
    if ((ip.bytes[byte] & mask) != (address.bytes[byte] & mask)) {
      return false;
    }
  }
  return true;
}

std::string IpPrefix::ToString() const {
  std::string out = address.ToString();
  if (prefix_length >= 0) {
    out += "/" + std::to_string(prefix_length);
  }
  return out;
}

ValueResult<IpAddress> ParseIp(std::string_view text) {
  std::string s(text);
  IpAddress ip;
  if (s.find(':') != std::string::npos) {
    ip.v6 = true;
    if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
      return ip;
    }
  } else if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
    return ip;
  }
  return std::unexpected(ValueError{"an IP address", "want e.g. 10.0.4.101 or fd00::1"});
}

ValueResult<IpPrefix> ParseIpPrefix(std::string_view text, bool prefix_required) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos && prefix_required) {
    return std::unexpected(ValueError{"an address with a prefix", "want CIDR, e.g. 10.0.4.0/24"});
  }
  auto ip = ParseIp(text.substr(0, slash));
  if (!ip) {
    return std::unexpected(ValueError{"an IP address", "want CIDR, e.g. 10.0.4.101/24"});
  }
  IpPrefix prefix{*ip, -1};
  if (slash != std::string_view::npos) {
    auto len = ParseUint(text.substr(slash + 1));
    if (!len || *len > prefix.max_length()) {
      return std::unexpected(
          ValueError{"an address with a prefix",
                     "want a prefix length 0-" + std::to_string(prefix.max_length())});
    }
    prefix.prefix_length = *len;
  }
  return prefix;
}

ValueResult<TalosVersion> ParseTalosVersion(std::string_view text) {
  const ValueError bad{"a Talos version", "want vMAJOR.MINOR.PATCH, e.g. v1.11.3"};
  if (text.size() < 6 || text[0] != 'v') {
    return std::unexpected(bad);
  }
  std::string_view rest = text.substr(1);
  std::string_view core = rest;
  std::string prerelease;
  if (auto dash = rest.find('-'); dash != std::string_view::npos) {
    core = rest.substr(0, dash);
    prerelease = std::string(rest.substr(dash + 1));
    if (prerelease.empty()) {
      return std::unexpected(bad);
    }
  }
  int parts[3] = {0, 0, 0};
  size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    size_t end = i < 2 ? core.find('.', start) : core.size();
    if (end == std::string_view::npos) {
      return std::unexpected(bad);
    }
    auto n = ParseUint(core.substr(start, end - start));
    if (!n) {
      return std::unexpected(bad);
    }
    parts[i] = *n;
    start = end + 1;
  }
  return TalosVersion{parts[0], parts[1], parts[2], prerelease, std::string(text)};
}

ValueResult<std::string> ParseKubernetesVersion(std::string_view text) {
  std::string_view s = text;
  if (!s.empty() && s[0] == 'v') {
    s.remove_prefix(1);
  }
  auto v = ParseTalosVersion("v" + std::string(s));
  if (!v) {
    return std::unexpected(
        ValueError{"a Kubernetes version", "want MAJOR.MINOR.PATCH, e.g. 1.34.1"});
  }
  return std::string(s);
}

std::optional<ValueError> CheckDnsLabel(std::string_view text) {
  if (text.empty() || text.size() > 63) {
    return ValueError{"a valid name", "want 1-63 characters"};
  }
  for (char c : text) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return ValueError{"a valid name",
                        "want lowercase letters, digits and '-' (it becomes the hostname)"};
    }
  }
  if (text.front() == '-' || text.back() == '-') {
    return ValueError{"a valid name", "must not start or end with '-'"};
  }
  return std::nullopt;
}

ValueResult<std::string> ParseHttpUrl(std::string_view text, bool https_only) {
  const ValueError bad{"a URL", https_only ? "want https://host[:port]"
                                           : "want http://host[:port][/path] or https://..."};
  std::string_view rest;
  if (text.starts_with("https://")) {
    rest = text.substr(8);
  } else if (!https_only && text.starts_with("http://")) {
    rest = text.substr(7);
  } else {
    return std::unexpected(bad);
  }
  auto host_end = rest.find_first_of("/?#");
  std::string_view host = rest.substr(0, host_end);
  if (host.empty() || host.find_first_of(" \t@") != std::string_view::npos ||
      rest.find_first_of(" \t\n?#") != std::string_view::npos) {
    return std::unexpected(bad);
  }
  std::string out(text);
  while (out.ends_with('/')) {
    out.pop_back();
  }
  return out;
}

ValueResult<int64_t> ParseDuration(std::string_view text) {
  const ValueError bad{"a duration", "want e.g. 30s, 10m or 1h30m"};
  if (text.empty()) {
    return std::unexpected(bad);
  }
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      ++i;
    }
    auto n = ParseUint(text.substr(start, i - start));
    if (!n || i == text.size()) {
      return std::unexpected(bad);
    }
    switch (text[i]) {
      case 'h':
        total += int64_t{*n} * 3600;
        break;
      case 'm':
        total += int64_t{*n} * 60;
        break;
      case 's':
        total += *n;
        break;
      default:
        return std::unexpected(bad);
    }
    ++i;
  }
  return total;
}

std::string NearestWord(std::string_view word, const std::vector<std::string>& candidates) {
  auto distance = [](std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) {
      row[j] = j;
    }
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diag = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t up = row[j];
        size_t cost = Lower(a[i - 1]) == Lower(b[j - 1]) ? 0 : 1;
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
        diag = up;
      }
    }
    return row[b.size()];
  };
  std::string best;
  size_t best_distance = 0;
  for (const auto& c : candidates) {
    size_t d = distance(word, c);
    if (best.empty() || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  // Plausible typo: at most a third of the longer word changed (min 2 edits).
  size_t limit = std::max<size_t>(2, std::max(word.size(), best.size()) / 3);
  return best_distance <= limit ? best : std::string();
}

}  // namespace ironboot::manifests
