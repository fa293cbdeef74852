// SecretsBaseConfigs: Render() of examples/homelab with base configs generated
// from a secrets bundle instead of the repo's talosctl output.

#include "manifests/secrets_base_configs.h"

#include <gtest/gtest.h>

#include "manifests/loader.h"
#include "manifests/render.h"
#include "manifests/repo_dir.h"
#include "talos/config_validate.h"

namespace ironboot::manifests {
namespace {

talos::SecretsBundle FixtureBundle() {
  auto b = talos::LoadSecretsBundleFile(std::string(IRONBOOT_SHARED_DIR) +
                                        "/talos/testdata/generate/secrets/testdata/secrets.yaml");
  EXPECT_TRUE(b.has_value()) << (b ? "" : b.error().message);
  return b ? *b : talos::SecretsBundle{};
}

// Every homelab machine gets a generated config carrying the bundle's secrets and
// its own patches; the configs pass the v1.11 schema with the control-plane SANs.
TEST(SecretsBaseConfigs, RendersHomelab) {
  auto files = ReadRepoDir(std::string(IRONBOOT_SOURCE_DIR) + "/examples/homelab");
  ASSERT_TRUE(files.has_value()) << files.error().message;
  auto state = Load(*files);
  ASSERT_TRUE(state.has_value()) << state.error().ToString();
  talos::SecretsBundle secrets = FixtureBundle();
  SecretsBaseConfigs source(*state, secrets);
  ASSERT_FALSE(source.ControlPlaneAddresses().empty());
  auto plan = Render(*state, source);
  ASSERT_TRUE(plan.has_value()) << plan.error().ToString();
  ASSERT_FALSE(plan->machine_configs.empty());
  talos::MachineConfigExpectations expect;
  expect.control_plane_addresses = source.ControlPlaneAddresses();
  for (const auto& [mac, config] : plan->machine_configs) {
    EXPECT_NE(config.find(secrets.cluster_secret), std::string::npos) << mac;
    auto report = talos::ValidateMachineConfig(config, state->cluster->talos_version.text, expect);
    ASSERT_TRUE(report.has_value()) << report.error().message;
    EXPECT_TRUE(report->ok()) << mac << ": " << report->ToString();
  }
  // Deterministic: a second render is byte-identical.
  auto again = Render(*state, source);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->machine_configs, plan->machine_configs);
}

// A cluster value the generator refuses is reported with the role and cluster named.
TEST(SecretsBaseConfigs, ErrorNamesRoleAndCluster) {
  DesiredState state;
  Cluster cluster;
  cluster.name = "lab";
  cluster.control_plane_endpoint = "http://x:6443";
  talos::SecretsBundle secrets = FixtureBundle();
  SecretsBaseConfigs source(state, secrets);
  auto r = source.BaseConfig(cluster, Role::kWorker);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message,
            "worker base config of cluster lab: generate config: endpoint \"http://x:6443\" is "
            "not an https://host:port URL");
}

}  // namespace
}  // namespace ironboot::manifests
