#pragma once
// manifests/: where a machine's base Talos config comes from. Today: files
// in the repo as `talosctl gen config` writes them (Cluster spec.baseConfigs).
// Later: generated from a secrets bundle kept outside git; that source
// implements the same interface and Render() does not change.

#include <memory>
#include <string>

#include "common/error.h"
#include "manifests/types.h"

namespace ironboot::manifests {

class BaseConfigSource {
 public:
  virtual ~BaseConfigSource() = default;
  // The full machine config (YAML, one or more documents) for `role` of
  // `cluster`. Errors name the file or secret that is missing; never its content.
  virtual Result<std::string> BaseConfig(const Cluster& cluster, Role role) const = 0;
};
using BaseConfigSourcePtr = std::unique_ptr<BaseConfigSource>;

// Base configs read from the repo files of `state` (Load() checked they exist).
class RepoBaseConfigs : public BaseConfigSource {
 public:
  explicit RepoBaseConfigs(const DesiredState& state) : state_(state) {}

  // BaseConfigSource
  Result<std::string> BaseConfig(const Cluster& cluster, Role role) const override;

 private:
  const DesiredState& state_;
};

}  // namespace ironboot::manifests
