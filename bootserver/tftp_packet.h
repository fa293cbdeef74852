#pragma once
// bootserver/: TFTP wire format (RFC 1350) and option negotiation (RFC 2347
// options, 2348 blksize, 2349 timeout and tsize, 7440 windowsize). Pure
// functions over bytes: no sockets, no files. The server (tftp_server.h) is the
// only user; the tests decode what the server sends with the same functions.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/error.h"

namespace ironboot::bootserver {

enum class TftpOpcode : uint16_t {
  kReadRequest = 1,
  kWriteRequest = 2,
  kData = 3,
  kAck = 4,
  kError = 5,
  kOptionAck = 6,  // RFC 2347
};

// The error codes of RFC 1350 section 5 plus 8 from RFC 2347.
enum class TftpErrorCode : uint16_t {
  kNotDefined = 0,
  kFileNotFound = 1,
  kAccessViolation = 2,
  kDiskFull = 3,
  kIllegalOperation = 4,
  kUnknownTransferId = 5,
  kFileExists = 6,
  kNoSuchUser = 7,
  kOptionRefused = 8,
};

// Option names and values as they appear on the wire, in order. Names are
// lowercased by the parser (RFC 2347: case-insensitive); values are kept.
using TftpOptionList = std::vector<std::pair<std::string, std::string>>;

// RRQ or WRQ.
struct TftpRequest {
  TftpOpcode opcode = TftpOpcode::kReadRequest;
  std::string filename;  // as sent, not yet resolved against any root
  std::string mode;      // lowercased: "octet", "netascii", "mail", ...
  TftpOptionList options;
  bool operator==(const TftpRequest&) const = default;
};
struct TftpData {
  uint16_t block = 0;
  std::string payload;
  bool operator==(const TftpData&) const = default;
};
struct TftpAck {
  uint16_t block = 0;
  bool operator==(const TftpAck&) const = default;
};
struct TftpErrorPacket {
  TftpErrorCode code = TftpErrorCode::kNotDefined;
  std::string message;
  bool operator==(const TftpErrorPacket&) const = default;
};
struct TftpOptionAck {
  TftpOptionList options;
  bool operator==(const TftpOptionAck&) const = default;
};
using TftpPacket = std::variant<TftpRequest, TftpData, TftpAck, TftpErrorPacket, TftpOptionAck>;

// Decodes one datagram. Fails with kInvalid and a message saying what is wrong
// ("packet too short", "unknown opcode 9", "filename not NUL-terminated",
// "option \"blksize\" has no value") for anything RFC 1350/2347 does not allow.
// An error packet whose message lacks its NUL terminator is accepted (some
// clients omit it).
Result<TftpPacket> ParseTftpPacket(std::span<const uint8_t> datagram);

// The longest ERROR message sent; longer ones are cut (RFC 1350 datagrams are
// at most 516 bytes, and some PXE ROMs have no bigger buffer).
inline constexpr size_t kTftpMaxErrorMessage = 500;

// Encoders. Each returns one complete datagram.
std::vector<uint8_t> EncodeTftpRequest(const TftpRequest& request);
std::vector<uint8_t> EncodeTftpData(uint16_t block, std::span<const uint8_t> payload);
std::vector<uint8_t> EncodeTftpAck(uint16_t block);
std::vector<uint8_t> EncodeTftpError(TftpErrorCode code, std::string_view message);
std::vector<uint8_t> EncodeTftpOptionAck(const TftpOptionList& options);

// RFC 2348 bounds on blksize, RFC 2349 on timeout, RFC 7440 on windowsize.
inline constexpr uint32_t kTftpMinBlockSize = 8;
inline constexpr uint32_t kTftpMaxBlockSize = 65464;
inline constexpr uint16_t kTftpDefaultBlockSize = 512;
inline constexpr uint32_t kTftpMinTimeoutSeconds = 1;
inline constexpr uint32_t kTftpMaxTimeoutSeconds = 255;
inline constexpr uint32_t kTftpMaxWindowSize = 65535;

// What the server is willing to grant.
struct TftpLimits {
  uint16_t max_block_size = kTftpMaxBlockSize;  // requests above are lowered to this
  uint16_t max_window_size = 64;                // 1 disables windowsize (RFC 7440)
  // A transfer keeps its unacknowledged window in memory: windowsize is also
  // lowered so that windowsize x blksize stays within this (at least 1 block).
  // 128 KiB still lets blksize 2048 use a window of 64.
  uint32_t max_window_bytes = 128 * 1024;
  // The longest retransmit timeout a client may ask for. RFC 2349 does not
  // let a server answer a different value, so a longer one is left out of the
  // OACK and the server keeps its own.
  uint32_t max_timeout_seconds = 5;
};

// The outcome of negotiating a read request's options.
struct TftpNegotiation {
  uint16_t block_size = kTftpDefaultBlockSize;
  uint16_t window_size = 1;
  std::optional<std::chrono::seconds> timeout;  // client-requested retransmit timeout
  // The options to put in the OACK, in the client's order. Empty: send no OACK
  // and start with DATA block 1 (RFC 2347: the client then uses defaults).
  TftpOptionList acknowledged;
  bool operator==(const TftpNegotiation&) const = default;
};

// Negotiates a read request's options (RFC 2347-2349, 7440). Never fails:
// unknown options and values out of range are left out of the OACK, which
// tells the client they were not accepted. When an option is repeated, only
// its first occurrence is considered.
//  - blksize: 8..65464 accepted, lowered to limits.max_block_size; below 8 or
//    not a number: ignored.
//  - timeout: 1..limits.max_timeout_seconds accepted as is; anything longer
//    (RFC 2349 allows up to 255) is left out, since RFC 2349 forbids
//    answering a different value.
//  - tsize: answered with `transfer_size` (the bytes the client will receive,
//    after netascii conversion); left out when `transfer_size` is unknown.
//  - windowsize: 1..65535, lowered to limits.max_window_size and to
//    limits.max_window_bytes / blksize (at least 1); left out when
//    limits.max_window_size is 1.
TftpNegotiation NegotiateTftpOptions(const TftpOptionList& requested, const TftpLimits& limits,
                                     std::optional<uint64_t> transfer_size);

// netascii (RFC 764 as used by RFC 1350): LF -> CR LF, CR -> CR NUL. Byte by
// byte, so a file can be converted in chunks. Appends to `out`.
void AppendNetascii(std::string_view raw, std::string& out);
// How many bytes `raw` becomes in netascii.
uint64_t NetasciiSize(std::string_view raw);

}  // namespace ironboot::bootserver
