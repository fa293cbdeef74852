#pragma once
// manifests/: Load(), a cluster repo (its files) to a validated DesiredState.
// Every rule in manifests/README.md is checked and every violation collected;
// nothing is returned half-valid.

#include <expected>
#include <map>
#include <string>

#include "manifests/diagnostics.h"
#include "manifests/types.h"

namespace ironboot::manifests {

// The repo: relative path ("machines/cp1.yaml", "/" separated) to bytes.
// The git source produces exactly this; ReadRepoDir() builds it from disk.
using RepoFiles = std::map<std::string, std::string>;

struct LoadOptions {
  // Talos version each machine runs now (machine name -> "v1.11.3"): from the
  // previously served plan (CurrentVersions) or what the Talos API reports.
  // A desired version that skips a minor release from it is an error.
  std::map<std::string, std::string> current_versions;
  // Base configs are generated from a secrets bundle (serve -secrets-file,
  // --secrets): the repo's spec.baseConfigs files are not required.
  bool base_configs_from_secrets = false;
};

// Parses every *.yaml/*.yml document with apiVersion ironboot.dev/... and the
// raw Matchbox groups/*.json and profiles/*.json, then checks fields and
// cross-document rules. On success the state carries the warnings; on
// failure every diagnostic found (errors and warnings).
std::expected<DesiredState, Diagnostics> Load(const RepoFiles& files,
                                              const LoadOptions& options = {});

// machine name -> the version `state` has it run (for LoadOptions of the next
// revision).
std::map<std::string, std::string> CurrentVersions(const DesiredState& state);

}  // namespace ironboot::manifests
