#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ironboot {
namespace fs = std::filesystem;

Result<void> WriteFileAtomically(const fs::path& file, std::string_view bytes, int mode) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  fs::path tmp = file;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return Fail(ErrorCode::kInternal, "cannot write " + tmp.string() + ": " + std::strerror(errno));
  }
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      std::string why = std::strerror(errno);
      ::close(fd);
      return Fail(ErrorCode::kInternal, "cannot write " + tmp.string() + ": " + why);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return Fail(ErrorCode::kInternal, "cannot sync " + tmp.string() + ": " + std::strerror(errno));
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    return Fail(ErrorCode::kInternal, "cannot rename " + tmp.string() + ": " + ec.message());
  }
  int dir = ::open(file.parent_path().empty() ? "." : file.parent_path().c_str(),
                   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

}  // namespace ironboot
