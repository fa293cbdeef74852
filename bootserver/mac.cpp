#include "bootserver/mac.h"

namespace ironboot::bootserver {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

bool ValidOctetCount(size_t n) { return n == 6 || n == 8 || n == 20; }

}  // namespace

std::optional<std::string> NormalizeMac(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  if (s.size() < 14) {
    return std::nullopt;
  }
  if (s[2] == ':' || s[2] == '-') {
    // xx:xx:xx:xx:xx:xx (3 chars per octet, the last without separator).
    const char sep = s[2];
    if ((s.size() + 1) % 3 != 0 || !ValidOctetCount((s.size() + 1) / 3)) {
      return std::nullopt;
    }
    for (size_t i = 0; i < s.size(); i += 3) {
      int hi = HexValue(s[i]);
      int lo = HexValue(s[i + 1]);
      if (hi < 0 || lo < 0 || (i + 2 < s.size() && s[i + 2] != sep)) {
        return std::nullopt;
      }
      if (!out.empty()) {
        out += ':';
      }
      out += kHex[hi];
      out += kHex[lo];
    }
    return out;
  }
  if (s[4] == '.') {
    // xxxx.xxxx.xxxx (5 chars per 2 octets).
    if ((s.size() + 1) % 5 != 0 || !ValidOctetCount(2 * (s.size() + 1) / 5)) {
      return std::nullopt;
    }
    for (size_t i = 0; i < s.size(); i += 5) {
      if (i + 4 < s.size() && s[i + 4] != '.') {
        return std::nullopt;
      }
      for (size_t j = 0; j < 4; j += 2) {
        int hi = HexValue(s[i + j]);
        int lo = HexValue(s[i + j + 1]);
        if (hi < 0 || lo < 0) {
          return std::nullopt;
        }
        if (!out.empty()) {
          out += ':';
        }
        out += kHex[hi];
        out += kHex[lo];
      }
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace ironboot::bootserver
