#include "talos/kubeconfig_archive.h"

#include <zlib.h>

#include <cstdint>
#include <optional>

namespace ironboot::talos {

namespace {

constexpr size_t kBlock = 512;

std::string Prefix(std::string_view what) {
  return std::string(what) + ": ";
}

// A NUL- or space-terminated field of a tar header.
std::string_view Field(std::string_view header, size_t offset, size_t size) {
  std::string_view f = header.substr(offset, size);
  size_t end = f.find('\0');
  return end == std::string_view::npos ? f : f.substr(0, end);
}

// Octal numbers, or GNU base-256 (high bit of the first byte set).
std::optional<uint64_t> ParseNumber(std::string_view raw) {
  if (!raw.empty() && (static_cast<unsigned char>(raw[0]) & 0x80) != 0) {
    uint64_t v = static_cast<unsigned char>(raw[0]) & 0x7f;
    for (size_t i = 1; i < raw.size(); ++i) {
      if (v > (UINT64_MAX >> 8)) {
        return std::nullopt;
      }
      v = (v << 8) | static_cast<unsigned char>(raw[i]);
    }
    return v;
  }
  uint64_t v = 0;
  bool digits = false;
  for (char c : raw) {
    if (c == '\0' || (c == ' ' && digits)) {
      break;
    }
    if (c == ' ') {
      continue;  // leading spaces
    }
    if (c < '0' || c > '7' || v > (UINT64_MAX >> 3)) {
      return std::nullopt;
    }
    v = v * 8 + static_cast<uint64_t>(c - '0');
    digits = true;
  }
  if (!digits) {
    return std::nullopt;
  }
  return v;
}

bool ChecksumMatches(std::string_view header) {
  auto want = ParseNumber(header.substr(148, 8));
  if (!want) {
    return false;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    sum += (i >= 148 && i < 156) ? static_cast<unsigned char>(' ')
                                 : static_cast<unsigned char>(header[i]);
  }
  return sum == *want;
}

bool AllZero(std::string_view block) {
  return block.find_first_not_of('\0') == std::string_view::npos;
}

}  // namespace

Result<std::string> Gunzip(std::string_view gz, std::string_view what, size_t max_bytes) {
  if (gz.size() < 2 || static_cast<unsigned char>(gz[0]) != 0x1f ||
      static_cast<unsigned char>(gz[1]) != 0x8b) {
    return Fail(ErrorCode::kInvalid, Prefix(what) + "not a gzip stream (" +
                                         std::to_string(gz.size()) +
                                         " bytes, want a .tar.gz starting with 1f 8b)");
  }
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    return Fail(ErrorCode::kInternal, Prefix(what) + "zlib inflateInit2 failed");
  }
  std::string out;
  char buf[64 * 1024];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  int rc = Z_OK;
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      std::string msg = zs.msg != nullptr ? zs.msg : ("zlib error " + std::to_string(rc));
      inflateEnd(&zs);
      if (rc == Z_BUF_ERROR) {
        msg = "unexpected end of data";
      }
      return Fail(ErrorCode::kInvalid, Prefix(what) + "corrupt gzip data: " + msg);
    }
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&zs);
      return Fail(ErrorCode::kInvalid,
                  Prefix(what) + "unpacks to more than " + std::to_string(max_bytes) + " bytes");
    }
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) {
        break;
      }
      // Another gzip member follows (gzip files may be concatenated).
      if (inflateReset(&zs) != Z_OK) {
        inflateEnd(&zs);
        return Fail(ErrorCode::kInternal, Prefix(what) + "zlib inflateReset failed");
      }
      continue;
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      return Fail(ErrorCode::kInvalid,
                  Prefix(what) + "truncated gzip data (the stream ends before its trailer)");
    }
  }
  inflateEnd(&zs);
  return out;
}

Result<std::string> ExtractSingleFileTarGz(std::string_view tar_gz, std::string_view what) {
  auto tar = Gunzip(tar_gz, what);
  if (!tar) {
    return std::unexpected(tar.error());
  }
  std::string_view data = *tar;
  size_t pos = 0;
  while (true) {
    if (pos + kBlock > data.size()) {
      return Fail(ErrorCode::kInvalid,
                  Prefix(what) + "tar archive ends at byte " + std::to_string(data.size()) +
                      " before holding a file (want a tar with one file, the kubeconfig)");
    }
    std::string_view header = data.substr(pos, kBlock);
    if (AllZero(header)) {
      return Fail(ErrorCode::kInvalid,
                  Prefix(what) + "tar archive holds no regular file (want the kubeconfig)");
    }
    if (!ChecksumMatches(header)) {
      return Fail(ErrorCode::kInvalid, Prefix(what) + "not a tar archive (header at byte " +
                                           std::to_string(pos) + " has a bad checksum)");
    }
    auto size = ParseNumber(header.substr(124, 12));
    if (!size) {
      return Fail(ErrorCode::kInvalid, Prefix(what) + "tar header at byte " + std::to_string(pos) +
                                           " has a bad size field");
    }
    char type = header[156];
    size_t body = pos + kBlock;
    if (*size > data.size() || body + *size > data.size()) {
      return Fail(ErrorCode::kInvalid,
                  Prefix(what) + "tar entry \"" + std::string(Field(header, 0, 100)) +
                      "\" is truncated (" + std::to_string(*size) + " bytes declared, " +
                      std::to_string(data.size() - body) + " present)");
    }
    if (type == '0' || type == '\0' || type == '7') {
      return std::string(data.substr(body, *size));
    }
    // Directories, links, pax ('x', 'g') and GNU long-name ('L', 'K') headers:
    // skip the entry and its padded body.
    pos = body + ((*size + kBlock - 1) / kBlock) * kBlock;
  }
}

}  // namespace ironboot::talos
