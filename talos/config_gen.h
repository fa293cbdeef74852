#pragma once
// talos/: machine-config generation, like `talosctl gen config`: the v1alpha1
// controlplane and worker configs of a cluster from its values and secrets.
// Pure and deterministic: the same inputs give the same bytes.

#include <string>
#include <vector>

#include "common/error.h"
#include "talos/secrets_bundle.h"

namespace ironboot::talos {

enum class MachineType { kControlPlane, kWorker };

struct ClusterValues {
  std::string name;                // clusterName
  std::string endpoint;            // https://host:port
  std::string talos_version;       // "v1.11.3": installer image tag
  std::string kubernetes_version;  // "1.34.1" or "v1.34.1"; empty: Talos's default
  std::string install_disk = "/dev/sda";
  std::string installer_image;  // empty: ghcr.io/siderolabs/installer:<talos_version>
  std::vector<std::string> control_plane_addresses;  // extra certSANs
  std::string dns_domain = "cluster.local";
  std::vector<std::string> pod_subnets = {"10.244.0.0/16"};
  std::vector<std::string> service_subnets = {"10.96.0.0/12"};
};

// The Kubernetes version a Talos release uses by default ("1.34.1"), or ""
// for a release we do not know.
std::string DefaultKubernetesVersion(std::string_view talos_version);

// The config YAML for `type`. Worker configs carry the os and Kubernetes CA
// certificates only (keys empty), no etcd, aggregator or service-account
// secrets. machine.certSANs and cluster.apiServer.certSANs hold the endpoint
// host and every control-plane address. Errors (kInvalid) name the value:
// an empty name, an endpoint that is not https://host[:port], an unknown
// Kubernetes version.
Result<std::string> GenerateMachineConfig(const ClusterValues& values, const SecretsBundle& secrets,
                                          MachineType type);

}  // namespace ironboot::talos
