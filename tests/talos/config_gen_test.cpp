#include "talos/config_gen.h"

#include <gtest/gtest.h>

#include "talos/config_validate.h"
#include "talos/yaml_value.h"
#include "tests/talos/secrets_fixture.h"
#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

using testing::GeneratedBundle;

ClusterValues Homelab() {
  ClusterValues v;
  v.name = "homelab";
  v.endpoint = "https://10.0.4.100:6443";
  v.talos_version = "v1.11.3";
  v.kubernetes_version = "1.34.1";
  v.install_disk = "/dev/nvme0n1";
  v.control_plane_addresses = {"10.0.4.101", "10.0.4.102", "10.0.4.103"};
  return v;
}

Value Parse(const std::string& yaml) {
  auto docs = ParseYamlDocuments(yaml, "gen");
  EXPECT_TRUE(docs && docs->size() == 1);
  return docs && !docs->empty() ? (*docs)[0] : Value{};
}

const Value* At(const Value& root, std::initializer_list<const char*> path) {
  const Value* v = &root;
  for (const char* k : path) {
    v = v && v->IsMap() ? v->Find(k) : nullptr;
  }
  return v;
}

std::string Text(const Value& root, std::initializer_list<const char*> path) {
  const Value* v = At(root, path);
  return v ? v->scalar : "<absent>";
}

// Every top-level and machine/cluster key of talosctl's controlplane.yaml (of those gen writes
// uncommented) is present in ours.
TEST(ConfigGen, ControlPlaneHasTalosctlKeys) {
  auto yaml = GenerateMachineConfig(Homelab(), GeneratedBundle(), MachineType::kControlPlane);
  ASSERT_TRUE(yaml.has_value()) << yaml.error().message;
  Value ours = Parse(*yaml);
  auto ref = ParseYamlDocuments(
      testutil::ReadFile(
          std::string(IRONBOOT_SHARED_DIR) +
          "/talos/testdata/configloader/internal/decoder/testdata/controlplane.yaml"),
      "ref");
  ASSERT_TRUE(ref.has_value());
  for (const auto& e : (*ref)[0].entries) {
    if (e.key == "persist") {
      continue;  // deprecated; absent from the v1.11 schema, which refuses it
    }
    EXPECT_NE(ours.Find(e.key), nullptr) << e.key;
  }
  for (const char* k :
       {"type", "token", "ca", "certSANs", "kubelet", "network", "install", "features"}) {
    EXPECT_NE(At(ours, {"machine", k}), nullptr) << "machine." << k;
  }
  for (const char* k : {"id", "secret", "controlPlane", "clusterName", "network", "token", "ca",
                        "aggregatorCA", "serviceAccount", "apiServer", "controllerManager", "proxy",
                        "scheduler", "discovery", "etcd", "extraManifests", "inlineManifests"}) {
    EXPECT_NE(At(ours, {"cluster", k}), nullptr) << "cluster." << k;
  }
}

// Control-plane values come from the bundle and the cluster values, in their places.
TEST(ConfigGen, ControlPlaneValues) {
  const SecretsBundle& s = GeneratedBundle();
  auto yaml = GenerateMachineConfig(Homelab(), s, MachineType::kControlPlane);
  ASSERT_TRUE(yaml.has_value());
  Value c = Parse(*yaml);
  EXPECT_EQ(Text(c, {"version"}), "v1alpha1");
  EXPECT_EQ(Text(c, {"machine", "type"}), "controlplane");
  EXPECT_EQ(Text(c, {"machine", "token"}), s.trustd_token);
  EXPECT_EQ(Text(c, {"machine", "ca", "crt"}), Base64Encode(s.os.crt));
  EXPECT_EQ(Text(c, {"machine", "ca", "key"}), Base64Encode(s.os.key));
  EXPECT_EQ(Text(c, {"machine", "kubelet", "image"}), "ghcr.io/siderolabs/kubelet:v1.34.1");
  EXPECT_EQ(Text(c, {"machine", "install", "disk"}), "/dev/nvme0n1");
  EXPECT_EQ(Text(c, {"machine", "install", "image"}), "ghcr.io/siderolabs/installer:v1.11.3");
  EXPECT_EQ(Text(c, {"cluster", "id"}), s.cluster_id);
  EXPECT_EQ(Text(c, {"cluster", "secret"}), s.cluster_secret);
  EXPECT_EQ(Text(c, {"cluster", "token"}), s.bootstrap_token);
  EXPECT_EQ(Text(c, {"cluster", "secretboxEncryptionSecret"}), s.secretbox_encryption_secret);
  EXPECT_EQ(Text(c, {"cluster", "controlPlane", "endpoint"}), "https://10.0.4.100:6443");
  EXPECT_EQ(Text(c, {"cluster", "clusterName"}), "homelab");
  EXPECT_EQ(Text(c, {"cluster", "network", "dnsDomain"}), "cluster.local");
  EXPECT_EQ(At(c, {"cluster", "network", "podSubnets"})->items.at(0).scalar, "10.244.0.0/16");
  EXPECT_EQ(At(c, {"cluster", "network", "serviceSubnets"})->items.at(0).scalar, "10.96.0.0/12");
  EXPECT_EQ(Text(c, {"cluster", "ca", "key"}), Base64Encode(s.k8s.key));
  EXPECT_EQ(Text(c, {"cluster", "aggregatorCA", "key"}), Base64Encode(s.k8s_aggregator.key));
  EXPECT_EQ(Text(c, {"cluster", "serviceAccount", "key"}), Base64Encode(s.k8s_service_account_key));
  EXPECT_EQ(Text(c, {"cluster", "etcd", "ca", "key"}), Base64Encode(s.etcd.key));
  EXPECT_EQ(Text(c, {"cluster", "apiServer", "image"}), "registry.k8s.io/kube-apiserver:v1.34.1");
  for (auto path : {std::vector<const char*>{"machine", "certSANs"},
                    std::vector<const char*>{"cluster", "apiServer", "certSANs"}}) {
    const Value* v = &c;
    for (const char* k : path) {
      v = v->Find(k);
    }
    ASSERT_NE(v, nullptr);
    std::vector<std::string> sans;
    for (const auto& i : v->items) {
      sans.push_back(i.scalar);
    }
    EXPECT_EQ(sans,
              (std::vector<std::string>{"10.0.4.100", "10.0.4.101", "10.0.4.102", "10.0.4.103"}));
  }
}

// Workers get CA certificates only: no CA keys, no etcd/aggregator/service-account secrets.
TEST(ConfigGen, WorkerHasNoCaKeys) {
  const SecretsBundle& s = GeneratedBundle();
  auto yaml = GenerateMachineConfig(Homelab(), s, MachineType::kWorker);
  ASSERT_TRUE(yaml.has_value());
  Value w = Parse(*yaml);
  EXPECT_EQ(Text(w, {"machine", "type"}), "worker");
  EXPECT_EQ(Text(w, {"machine", "ca", "crt"}), Base64Encode(s.os.crt));
  EXPECT_EQ(Text(w, {"machine", "ca", "key"}), "");
  EXPECT_EQ(Text(w, {"cluster", "ca", "crt"}), Base64Encode(s.k8s.crt));
  EXPECT_EQ(Text(w, {"cluster", "ca", "key"}), "");
  EXPECT_EQ(Text(w, {"cluster", "token"}), s.bootstrap_token);
  EXPECT_EQ(Text(w, {"machine", "token"}), s.trustd_token);
  for (const char* k :
       {"aggregatorCA", "serviceAccount", "etcd", "apiServer", "secretboxEncryptionSecret"}) {
    EXPECT_EQ(At(w, {"cluster", k}), nullptr) << k;
  }
  for (const std::string& key : {s.os.key, s.k8s.key, s.etcd.key, s.k8s_aggregator.key,
                                 s.k8s_service_account_key, s.secretbox_encryption_secret}) {
    EXPECT_EQ(yaml->find(Base64Encode(key)), std::string::npos);
    EXPECT_EQ(yaml->find(key), std::string::npos);
  }
}

// Both generated configs pass the Talos v1.11 schema and the semantic checks.
TEST(ConfigGen, PassesTalosSchema) {
  for (auto type : {MachineType::kControlPlane, MachineType::kWorker}) {
    auto yaml = GenerateMachineConfig(Homelab(), GeneratedBundle(), type);
    ASSERT_TRUE(yaml.has_value());
    MachineConfigExpectations expect;
    expect.control_plane_addresses = Homelab().control_plane_addresses;
    auto report = ValidateMachineConfig(*yaml, "v1.11.3", expect);
    ASSERT_TRUE(report.has_value()) << report.error().message;
    EXPECT_TRUE(report->ok()) << report->ToString();
  }
}

// Same inputs, same bytes; the Kubernetes version defaults to the Talos release's.
TEST(ConfigGen, DeterministicAndDefaults) {
  auto a = GenerateMachineConfig(Homelab(), GeneratedBundle(), MachineType::kControlPlane);
  auto b = GenerateMachineConfig(Homelab(), GeneratedBundle(), MachineType::kControlPlane);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  ClusterValues v = Homelab();
  v.kubernetes_version = "";
  v.talos_version = "v1.13.9";
  auto c = GenerateMachineConfig(v, GeneratedBundle(), MachineType::kWorker);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(Text(Parse(*c), {"machine", "kubelet", "image"}), "ghcr.io/siderolabs/kubelet:v1.36.3");
  EXPECT_EQ(DefaultKubernetesVersion("v1.12.11"), "1.35.4");
  EXPECT_EQ(DefaultKubernetesVersion("v1.12.3"), "1.35.0");
  EXPECT_EQ(DefaultKubernetesVersion("v1.9.0"), "");
}

// Bad cluster values are refused with the value named.
TEST(ConfigGen, BadValues) {
  struct Case {
    void (*mutate)(ClusterValues&);
    std::string want;
  } cases[] = {
      {[](ClusterValues& v) { v.name = ""; }, "generate config: cluster name is empty"},
      {[](ClusterValues& v) { v.endpoint = "http://10.0.4.100:6443"; },
       "generate config: endpoint \"http://10.0.4.100:6443\" is not an https://host:port URL"},
      {[](ClusterValues& v) { v.install_disk = ""; }, "generate config: install disk is empty"},
      {[](ClusterValues& v) {
         v.kubernetes_version = "";
         v.talos_version = "v1.9.0";
       },
       "generate config: no default Kubernetes version known for Talos v1.9.0 (set the "
       "Kubernetes version)"},
  };
  for (const auto& c : cases) {
    ClusterValues v = Homelab();
    c.mutate(v);
    auto r = GenerateMachineConfig(v, GeneratedBundle(), MachineType::kControlPlane);
    ASSERT_FALSE(r.has_value()) << c.want;
    EXPECT_EQ(r.error().message, c.want);
  }
}

}  // namespace
}  // namespace ironboot::talos
