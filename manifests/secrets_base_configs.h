#pragma once
// manifests/: base machine configs generated from a secrets bundle kept
// outside the repo (instead of `talosctl gen config` files in it). Plugs into
// Render() through BaseConfigSource.

#include <string>
#include <vector>

#include "manifests/base_configs.h"
#include "talos/secrets_bundle.h"

namespace ironboot::manifests {

// Generates the controlplane / worker config with talos::GenerateMachineConfig
// from the Cluster (name, endpoint, Talos and Kubernetes versions, install
// disk; /dev/sda when the cluster sets none) and the bundle. The certSANs are
// the endpoint host plus the static address of every control-plane Machine of
// `state`. Output is deterministic. `state` and `secrets` must outlive this.
class SecretsBaseConfigs : public BaseConfigSource {
 public:
  SecretsBaseConfigs(const DesiredState& state, const talos::SecretsBundle& secrets)
      : state_(state), secrets_(secrets) {}

  // The control-plane addresses the certSANs get, in machine-name order.
  std::vector<std::string> ControlPlaneAddresses() const;

  // BaseConfigSource
  Result<std::string> BaseConfig(const Cluster& cluster, Role role) const override;

 private:
  const DesiredState& state_;
  const talos::SecretsBundle& secrets_;
};

}  // namespace ironboot::manifests
