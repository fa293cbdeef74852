#pragma once
// common/: client-supplied text made safe for a log line.

#include <cstdio>
#include <string>
#include <string_view>

namespace ironboot {

// `text` from a client (a query value, a file name), safe inside one quoted
// log value: control bytes, bytes >= 0x7f, '"' and '\\' become \xNN, so a
// client can neither end the line nor forge key=value pairs.
inline std::string LogSafe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace ironboot
