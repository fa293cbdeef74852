#include "bootserver/tftp_packet.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace ironboot::bootserver {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

void PutU16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xff));
}

void PutString(std::vector<uint8_t>& out, std::string_view s) {
  out.insert(out.end(), s.begin(), s.end());
  out.push_back(0);
}

uint16_t GetU16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}

// Splits the NUL-terminated strings after the opcode. `what` names each field
// in messages ("filename", "mode", then options).
Result<std::vector<std::string>> SplitStrings(std::span<const uint8_t> body) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == 0) {
      out.emplace_back(reinterpret_cast<const char*>(body.data()) + start, i - start);
      start = i + 1;
    }
  }
  if (start != body.size()) {
    return Fail(ErrorCode::kInvalid,
                "string " + std::to_string(out.size() + 1) + " is not NUL-terminated");
  }
  return out;
}

Result<TftpOptionList> ParseOptions(const std::vector<std::string>& strings, size_t first) {
  TftpOptionList options;
  for (size_t i = first; i < strings.size(); i += 2) {
    if (strings[i].empty()) {
      return Fail(ErrorCode::kInvalid, "empty option name");
    }
    if (i + 1 >= strings.size()) {
      return Fail(ErrorCode::kInvalid, "option \"" + strings[i] + "\" has no value");
    }
    options.emplace_back(Lower(strings[i]), strings[i + 1]);
  }
  return options;
}

Result<TftpPacket> ParseRequest(TftpOpcode opcode, std::span<const uint8_t> body) {
  auto strings = SplitStrings(body);
  if (!strings) {
    return std::unexpected(strings.error().Wrap("request"));
  }
  if (strings->size() < 2) {
    return Fail(ErrorCode::kInvalid,
                strings->empty() ? "request has no filename" : "request has no mode");
  }
  if ((*strings)[0].empty()) {
    return Fail(ErrorCode::kInvalid, "request has an empty filename");
  }
  auto options = ParseOptions(*strings, 2);
  if (!options) {
    return std::unexpected(options.error().Wrap("request"));
  }
  return TftpRequest{opcode, (*strings)[0], Lower((*strings)[1]), std::move(*options)};
}

// Parses a decimal option value without sign, spaces or overflow.
std::optional<uint64_t> ParseNumber(std::string_view s) {
  uint64_t v = 0;
  if (s.empty()) {
    return std::nullopt;
  }
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

}  // namespace

Result<TftpPacket> ParseTftpPacket(std::span<const uint8_t> b) {
  if (b.size() < 2) {
    return Fail(ErrorCode::kInvalid,
                "packet too short (" + std::to_string(b.size()) + " bytes, want at least 2)");
  }
  const uint16_t op = GetU16(b, 0);
  auto body = b.subspan(2);
  switch (static_cast<TftpOpcode>(op)) {
    case TftpOpcode::kReadRequest:
    case TftpOpcode::kWriteRequest:
      return ParseRequest(static_cast<TftpOpcode>(op), body);
    case TftpOpcode::kData:
      if (body.size() < 2) {
        return Fail(ErrorCode::kInvalid, "DATA packet has no block number");
      }
      return TftpData{GetU16(b, 2),
                      std::string(reinterpret_cast<const char*>(b.data()) + 4, b.size() - 4)};
    case TftpOpcode::kAck:
      if (body.size() != 2) {
        return Fail(ErrorCode::kInvalid,
                    "ACK packet is " + std::to_string(b.size()) + " bytes (want 4)");
      }
      return TftpAck{GetU16(b, 2)};
    case TftpOpcode::kError: {
      if (body.size() < 2) {
        return Fail(ErrorCode::kInvalid, "ERROR packet has no error code");
      }
      auto msg = body.subspan(2);
      auto nul = std::find(msg.begin(), msg.end(), uint8_t{0});
      return TftpErrorPacket{static_cast<TftpErrorCode>(GetU16(b, 2)),
                             std::string(msg.begin(), nul)};
    }
    case TftpOpcode::kOptionAck: {
      auto strings = SplitStrings(body);
      if (!strings) {
        return std::unexpected(strings.error().Wrap("OACK"));
      }
      auto options = ParseOptions(*strings, 0);
      if (!options) {
        return std::unexpected(options.error().Wrap("OACK"));
      }
      return TftpOptionAck{std::move(*options)};
    }
  }
  return Fail(ErrorCode::kInvalid, "unknown opcode " + std::to_string(op));
}

std::vector<uint8_t> EncodeTftpRequest(const TftpRequest& request) {
  std::vector<uint8_t> out;
  PutU16(out, static_cast<uint16_t>(request.opcode));
  PutString(out, request.filename);
  PutString(out, request.mode);
  for (const auto& [name, value] : request.options) {
    PutString(out, name);
    PutString(out, value);
  }
  return out;
}

std::vector<uint8_t> EncodeTftpData(uint16_t block, std::span<const uint8_t> payload) {
  std::vector<uint8_t> out;
  out.reserve(4 + payload.size());
  PutU16(out, static_cast<uint16_t>(TftpOpcode::kData));
  PutU16(out, block);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<uint8_t> EncodeTftpAck(uint16_t block) {
  std::vector<uint8_t> out;
  PutU16(out, static_cast<uint16_t>(TftpOpcode::kAck));
  PutU16(out, block);
  return out;
}

std::vector<uint8_t> EncodeTftpError(TftpErrorCode code, std::string_view message) {
  std::vector<uint8_t> out;
  PutU16(out, static_cast<uint16_t>(TftpOpcode::kError));
  PutU16(out, static_cast<uint16_t>(code));
  // A NUL inside the message would end it early on the client: cut there.
  message = message.substr(0, message.find('\0'));
  PutString(out, message.substr(0, kTftpMaxErrorMessage));
  return out;
}

std::vector<uint8_t> EncodeTftpOptionAck(const TftpOptionList& options) {
  std::vector<uint8_t> out;
  PutU16(out, static_cast<uint16_t>(TftpOpcode::kOptionAck));
  for (const auto& [name, value] : options) {
    PutString(out, name);
    PutString(out, value);
  }
  return out;
}

TftpNegotiation NegotiateTftpOptions(const TftpOptionList& requested, const TftpLimits& limits,
                                     std::optional<uint64_t> transfer_size) {
  TftpNegotiation n;
  std::vector<std::string_view> seen;
  std::optional<size_t> window_entry;  // index in n.acknowledged, filled in last
  uint64_t window_requested = 1;
  for (const auto& [name, value] : requested) {
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      continue;  // a repeated option: the first one counts, accepted or not
    }
    seen.push_back(name);
    auto number = ParseNumber(value);
    if (name == "blksize") {
      if (number && *number >= kTftpMinBlockSize) {
        const uint64_t max =
            std::clamp<uint64_t>(limits.max_block_size, kTftpMinBlockSize, kTftpMaxBlockSize);
        n.block_size = static_cast<uint16_t>(std::min(*number, max));
        n.acknowledged.emplace_back(name, std::to_string(n.block_size));
      }
    } else if (name == "timeout") {
      const uint64_t max = std::min(limits.max_timeout_seconds, kTftpMaxTimeoutSeconds);
      if (number && *number >= kTftpMinTimeoutSeconds && *number <= max) {
        n.timeout = std::chrono::seconds(*number);
        n.acknowledged.emplace_back(name, std::to_string(*number));
      }
    } else if (name == "tsize") {
      if (number && transfer_size) {
        n.acknowledged.emplace_back(name, std::to_string(*transfer_size));
      }
    } else if (name == "windowsize") {
      if (number && *number >= 1 && *number <= kTftpMaxWindowSize && limits.max_window_size > 1) {
        window_requested = *number;
        window_entry = n.acknowledged.size();
        n.acknowledged.emplace_back(name, "");
      }
    }
    // Anything else (multicast, rollover, vendor options) is not acknowledged.
  }
  if (window_entry) {
    // Only now: blksize may come after windowsize in the request.
    const uint64_t by_memory = std::max<uint64_t>(1, limits.max_window_bytes / n.block_size);
    n.window_size = static_cast<uint16_t>(
        std::min({window_requested, static_cast<uint64_t>(limits.max_window_size), by_memory}));
    n.acknowledged[*window_entry].second = std::to_string(n.window_size);
  }
  return n;
}

void AppendNetascii(std::string_view raw, std::string& out) {
  for (char c : raw) {
    if (c == '\n') {
      out += "\r\n";
    } else if (c == '\r') {
      out.push_back('\r');
      out.push_back('\0');
    } else {
      out.push_back(c);
    }
  }
}

uint64_t NetasciiSize(std::string_view raw) {
  return raw.size() + static_cast<uint64_t>(std::count(raw.begin(), raw.end(), '\n')) +
         static_cast<uint64_t>(std::count(raw.begin(), raw.end(), '\r'));
}

}  // namespace ironboot::bootserver
