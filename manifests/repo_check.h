#pragma once
// manifests/: what checking a cluster repo directory gives `validate`,
// `render` and `plan`. controller::CheckRepoDir (controller/gitops.h) fills it:
// it reads, loads, renders and schema-validates the repo the way `serve`
// would, with diagnostics' file names as the user typed DIR.

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

}  // namespace ironboot::manifests
