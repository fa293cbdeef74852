#include "bootserver/labels.h"

#include <cctype>

#include "bootserver/mac.h"

namespace ironboot::bootserver {
namespace {

int Hex(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

bool IsMacKey(std::string_view key) {
  return key.size() == 3 && std::tolower(static_cast<unsigned char>(key[0])) == 'm' &&
         std::tolower(static_cast<unsigned char>(key[1])) == 'a' &&
         std::tolower(static_cast<unsigned char>(key[2])) == 'c';
}

}  // namespace

std::string QueryUnescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && Hex(s[i + 1]) >= 0 && Hex(s[i + 2]) >= 0) {
      out += static_cast<char>(Hex(s[i + 1]) * 16 + Hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view raw) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!raw.empty()) {
    size_t amp = raw.find('&');
    std::string_view part = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (part.empty()) {
      continue;
    }
    size_t eq = part.find('=');
    std::string_view key = part.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    out.emplace_back(QueryUnescape(key), QueryUnescape(value));
  }
  return out;
}

LabelParse LabelsFromQuery(std::string_view raw_query) {
  LabelParse result;
  std::map<std::string, bool> seen;
  for (auto& [key, value] : ParseQuery(raw_query)) {
    if (!seen.emplace(key, true).second) {
      continue;  // first value wins, even when it was an invalid MAC
    }
    if (IsMacKey(key)) {
      if (auto mac = NormalizeMac(value)) {
        result.labels.emplace(std::move(key), std::move(*mac));
      } else {
        result.dropped_macs.push_back(std::move(value));
      }
      continue;
    }
    result.labels.emplace(std::move(key), std::move(value));
  }
  return result;
}

}  // namespace ironboot::bootserver
