#pragma once
// manifests/: the shared core of `validate` and `render`: read a cluster repo
// directory, load, validate and render it, with diagnostics' file names made
// relative to the current directory (as the user typed DIR).

#include <optional>
#include <string>

#include "manifests/boot_plan.h"
#include "manifests/diagnostics.h"

namespace ironboot::manifests {

struct RepoCheck {
  std::string error;             // could not even read DIR (or --previous DIR); diagnostics empty
  Diagnostics diagnostics;       // errors and warnings, in order
  std::optional<BootPlan> plan;  // set when there are no errors
};

// `previous`: the deployed repo, whose machines' versions are the upgrade's
// starting point (LoadOptions::current_versions).
RepoCheck CheckRepo(const std::string& dir, const std::optional<std::string>& previous);

}  // namespace ironboot::manifests
