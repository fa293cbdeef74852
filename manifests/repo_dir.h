#pragma once
// manifests/: a cluster repo on disk read into the same RepoFiles map the git
// source produces, for `ironboot validate DIR` and `ironboot render DIR`.

#include <filesystem>

#include "common/error.h"
#include "manifests/loader.h"

namespace ironboot::manifests {

// Every regular file under `dir` (symlinks followed; hidden files and
// directories such as .git skipped), keyed by its "/"-separated path
// relative to `dir`. Files over 16 MiB are refused (kInvalid), since a
// cluster repo holds text. Errors name the path.
Result<RepoFiles> ReadRepoDir(const std::filesystem::path& dir);

}  // namespace ironboot::manifests
