#pragma once
// tests/manifests: a small valid cluster repo to break one rule at a time.

#include <string>

#include "manifests/loader.h"

namespace ironboot::manifests::test {

inline const char kClusterYaml[] = R"(apiVersion: ironboot.dev/v1alpha1
kind: Cluster
metadata:
  name: lab
spec:
  controlPlaneEndpoint: https://10.0.4.100:6443
  talosVersion: v1.11.3
  bootServerURL: http://10.0.112.2:8080
  subnet: 10.0.4.0/24
  installDisk: /dev/sda
  kernelArgs: [console=ttyS0]
---
apiVersion: ironboot.dev/v1alpha1
kind: TalosRelease
metadata:
  name: v1.11.3
spec:
  version: v1.11.3
)";

inline const char kBaseControlplane[] = R"(version: v1alpha1
machine:
  type: controlplane
  token: fake00.placeholder000000
  certSANs: [10.0.4.11, 10.0.4.12, 10.0.4.13]
  install:
    disk: /dev/sda
cluster:
  clusterName: lab
  controlPlane:
    endpoint: https://10.0.4.100:6443
)";

inline const char kBaseWorker[] = R"(version: v1alpha1
machine:
  type: worker
  token: fake00.placeholder000000
  install:
    disk: /dev/sda
cluster:
  clusterName: lab
  controlPlane:
    endpoint: https://10.0.4.100:6443
)";

inline std::string MachineYaml(const std::string& name, const std::string& role,
                               const std::string& mac, const std::string& address,
                               const std::string& extra = "") {
  return "apiVersion: ironboot.dev/v1alpha1\nkind: Machine\nmetadata:\n  name: " + name +
         "\nspec:\n  role: " + role + "\n  mac: " + mac + "\n  address: " + address + "\n" + extra;
}

// cp1..cp3 (10.0.4.11-13) and w1 (10.0.4.21).
inline RepoFiles ValidRepo() {
  return RepoFiles{
      {"cluster.yaml", kClusterYaml},
      {"controlplane.yaml", kBaseControlplane},
      {"worker.yaml", kBaseWorker},
      {"machines/cp1.yaml",
       MachineYaml("cp1", "controlplane", "00:00:00:00:00:01", "10.0.4.11/24")},
      {"machines/cp2.yaml",
       MachineYaml("cp2", "controlplane", "00:00:00:00:00:02", "10.0.4.12/24")},
      {"machines/cp3.yaml",
       MachineYaml("cp3", "controlplane", "00:00:00:00:00:03", "10.0.4.13/24")},
      {"machines/w1.yaml", MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24")},
  };
}

// All diagnostics of loading `files` (empty when clean), one per line.
inline std::string LoadDiagnostics(const RepoFiles& files, const LoadOptions& options = {}) {
  auto state = Load(files, options);
  return state ? state->warnings.ToString() : state.error().ToString();
}

}  // namespace ironboot::manifests::test
