#include "manifests/repo_check.h"

#include <filesystem>

#include "manifests/loader.h"
#include "manifests/render.h"
#include "manifests/repo_dir.h"

namespace ironboot::manifests {
namespace {

Diagnostics Prefixed(const Diagnostics& in, const std::string& dir) {
  Diagnostics out;
  for (auto d : in.items()) {
    d.position.file =
        (std::filesystem::path(dir) / d.position.file).lexically_normal().generic_string();
    out.Add(std::move(d));
  }
  return out;
}

}  // namespace

RepoCheck CheckRepo(const std::string& dir, const std::optional<std::string>& previous) {
  RepoCheck result;
  LoadOptions options;
  if (previous) {
    auto files = ReadRepoDir(*previous);
    if (!files) {
      result.error = "--previous: " + files.error().message;
      return result;
    }
    auto state = Load(*files);
    if (!state) {
      result.error = "--previous " + *previous +
                     " does not validate, so it cannot be the starting point (" +
                     std::to_string(state.error().ErrorCount()) +
                     " error(s); run ironboot validate " + *previous + ")";
      return result;
    }
    options.current_versions = CurrentVersions(*state);
  }
  auto files = ReadRepoDir(dir);
  if (!files) {
    result.error = files.error().message;
    return result;
  }
  auto state = Load(*files, options);
  if (!state) {
    result.diagnostics = Prefixed(state.error(), dir);
    return result;
  }
  Diagnostics all = state->warnings;
  auto plan = Render(*state);
  if (!plan) {
    all.Append(plan.error());
  } else {
    result.plan = std::move(*plan);
  }
  result.diagnostics = Prefixed(all, dir);
  return result;
}

}  // namespace ironboot::manifests
