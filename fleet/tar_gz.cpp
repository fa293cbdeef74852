#include "fleet/tar_gz.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>

namespace ironboot::fleet {
namespace {

void Octal(char* field, size_t width, unsigned long value) {
  // width includes the terminating NUL
  std::snprintf(field, width, "%0*lo", static_cast<int>(width - 1), value);
}

}  // namespace

Result<std::string> SingleFileTarGz(std::string_view name, std::string_view content, long mtime) {
  if (name.empty() || name.size() >= 100) {
    return Fail(ErrorCode::kInvalid,
                "tar: file name \"" + std::string(name.substr(0, 120)) + "\" must be 1-99 bytes");
  }
  char header[512];
  std::memset(header, 0, sizeof(header));
  std::memcpy(header, name.data(), name.size());
  Octal(header + 100, 8, 0600);
  Octal(header + 108, 8, 0);
  Octal(header + 116, 8, 0);
  Octal(header + 124, 12, content.size());
  Octal(header + 136, 12, static_cast<unsigned long>(mtime));
  header[156] = '0';
  std::memcpy(header + 257, "ustar", 6);  // magic "ustar\0"
  std::memcpy(header + 263, "00", 2);
  std::memset(header + 148, ' ', 8);
  unsigned long sum = 0;
  for (unsigned char c : header) {
    sum += c;
  }
  std::snprintf(header + 148, 8, "%06lo", sum);  // six digits, NUL, then the space kept
  header[155] = ' ';

  std::string tar(header, sizeof(header));
  tar.append(content);
  tar.append((512 - content.size() % 512) % 512, '\0');
  tar.append(1024, '\0');  // two zero blocks end the archive

  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Fail(ErrorCode::kInternal, "tar.gz: deflateInit2 failed");
  }
  std::string out(deflateBound(&z, tar.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(tar.data());
  z.avail_in = static_cast<uInt>(tar.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  size_t produced = out.size() - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    return Fail(ErrorCode::kInternal, "tar.gz: deflate failed");
  }
  out.resize(produced);
  return out;
}

}  // namespace ironboot::fleet
