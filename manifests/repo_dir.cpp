#include "manifests/repo_dir.h"

#include <fstream>
#include <sstream>
#include <system_error>

namespace ironboot::manifests {

Result<RepoFiles> ReadRepoDir(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  constexpr uintmax_t kMaxFileBytes = 16u << 20;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Fail(ErrorCode::kNotFound, dir.string() + ": not a directory");
  }
  RepoFiles files;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec);
  if (ec) {
    return Fail(ErrorCode::kInternal, dir.string() + ": " + ec.message());
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      return Fail(ErrorCode::kInternal, dir.string() + ": " + ec.message());
    }
    const fs::path& p = it->path();
    if (p.filename().string().starts_with(".")) {
      if (it->is_directory(ec)) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (!it->is_regular_file(ec)) {
      continue;
    }
    std::string rel = p.lexically_relative(dir).generic_string();
    if (it->file_size(ec) > kMaxFileBytes) {
      return Fail(ErrorCode::kInvalid, rel + ": larger than 16 MiB; not a cluster repo file");
    }
    std::ifstream in(p, std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();
    if (!in && !in.eof()) {
      return Fail(ErrorCode::kInternal, rel + ": cannot read");
    }
    files[rel] = buf.str();
  }
  return files;
}

}  // namespace ironboot::manifests
