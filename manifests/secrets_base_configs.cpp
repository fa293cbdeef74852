#include "manifests/secrets_base_configs.h"

#include "talos/config_gen.h"

namespace ironboot::manifests {

std::vector<std::string> SecretsBaseConfigs::ControlPlaneAddresses() const {
  std::vector<std::string> out;
  for (const Machine& m : state_.machines) {
    if (m.role == Role::kControlPlane && m.address) {
      out.push_back(m.address->address.ToString());
    }
  }
  return out;
}

Result<std::string> SecretsBaseConfigs::BaseConfig(const Cluster& cluster, Role role) const {
  talos::ClusterValues values;
  values.name = cluster.name;
  values.endpoint = cluster.control_plane_endpoint;
  values.talos_version = cluster.talos_version.text;
  values.kubernetes_version = cluster.kubernetes_version;
  if (!cluster.install_disk.empty()) {
    values.install_disk = cluster.install_disk;
  }
  values.control_plane_addresses = ControlPlaneAddresses();
  auto config =
      talos::GenerateMachineConfig(values, secrets_,
                                   role == Role::kControlPlane ? talos::MachineType::kControlPlane
                                                               : talos::MachineType::kWorker);
  if (!config) {
    return std::unexpected(config.error().Wrap(std::string(RoleName(role)) +
                                               " base config of cluster " + cluster.name));
  }
  return config;
}

}  // namespace ironboot::manifests
