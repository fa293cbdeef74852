// Render(): groups, profiles, machine configs and release assets from a
// validated repo; the homelab example against the seed's hand-written files.

#include "manifests/render.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "manifests/loader.h"
#include "manifests/repo_dir.h"
#include "tests/manifests/manifests_test_util.h"

namespace ironboot::manifests {
namespace {

using test::MachineYaml;
using test::ValidRepo;
using ::testing::HasSubstr;

BootPlan MustRender(const RepoFiles& files) {
  auto state = Load(files);
  EXPECT_TRUE(state) << state.error().ToString();
  if (!state) {
    return {};
  }
  auto plan = Render(*state);
  EXPECT_TRUE(plan) << plan.error().ToString();
  return plan ? *plan : BootPlan{};
}

std::string RenderErrors(const RepoFiles& files) {
  auto state = Load(files);
  EXPECT_TRUE(state) << state.error().ToString();
  if (!state) {
    return "";
  }
  auto plan = Render(*state);
  return plan ? std::string() : plan.error().ToString();
}

const bootserver::Profile* FindProfile(const BootPlan& plan, const std::string& id) {
  for (const auto& p : plan.profiles) {
    if (p.id == id) {
      return &p;
    }
  }
  return nullptr;
}

const bootserver::Group* GroupForMac(const std::vector<bootserver::Group>& groups,
                                     const std::string& mac) {
  for (const auto& g : groups) {
    auto it = g.selector.find("mac");
    if (it != g.selector.end() && it->second == mac) {
      return &g;
    }
  }
  return nullptr;
}

std::vector<std::string> ArgsWithoutTalosConfig(std::vector<std::string> args) {
  std::erase_if(args, [](const std::string& a) { return a.starts_with("talos.config="); });
  std::sort(args.begin(), args.end());
  return args;
}

BootPlan RenderHomelab() {
  auto files = ReadRepoDir(std::string(IRONBOOT_SOURCE_DIR) + "/examples/homelab");
  EXPECT_TRUE(files) << files.error().message;
  return files ? MustRender(*files) : BootPlan{};
}

// examples/homelab renders to groups and profiles equivalent to the seed's
// hand-written Matchbox files: same MACs, kernel, initrd and args, except
// talos.config, which now points at the boot server's /config.
TEST(RenderTest, HomelabMatchesTheSeedsMatchboxFiles) {
  BootPlan plan = RenderHomelab();
  auto seed_files =
      ReadRepoDir(std::string(IRONBOOT_SOURCE_DIR) + "/tests/manifests/testdata/seed_matchbox");
  ASSERT_TRUE(seed_files);
  auto seed = Load(*seed_files);
  ASSERT_TRUE(seed) << seed.error().ToString();
  ASSERT_EQ(seed->raw_groups.size(), 3u);
  ASSERT_EQ(plan.groups.size(), 3u);
  ASSERT_EQ(plan.profiles.size(), 3u);
  for (const auto& seed_group : seed->raw_groups) {
    const std::string& mac = seed_group.selector.at("mac");
    const auto* group = GroupForMac(plan.groups, mac);
    ASSERT_NE(group, nullptr) << "no group for " << mac;
    EXPECT_EQ(group->selector, seed_group.selector);
    const auto* profile = FindProfile(plan, group->profile);
    ASSERT_NE(profile, nullptr);
    auto seed_profile = std::find_if(seed->raw_profiles.begin(), seed->raw_profiles.end(),
                                     [&](const auto& p) { return p.id == seed_group.profile; });
    ASSERT_NE(seed_profile, seed->raw_profiles.end());
    EXPECT_EQ(profile->kernel, seed_profile->kernel);
    EXPECT_EQ(profile->initrd, seed_profile->initrd);
    EXPECT_EQ(ArgsWithoutTalosConfig(profile->args), ArgsWithoutTalosConfig(seed_profile->args));
    EXPECT_EQ(profile->args.back(), "talos.config=http://10.0.112.2:8080/config?mac=${mac:hexhyp}");
  }
  ASSERT_EQ(plan.releases.size(), 1u);
  EXPECT_EQ(plan.releases[0].kernel.served_path, "talos/1.11.3/amd64/vmlinuz");
  EXPECT_EQ(plan.releases[0].initramfs.served_path, "talos/1.11.3/amd64/initramfs.xz");
  EXPECT_EQ(plan.releases[0].kernel.sum_file_name, "vmlinuz-amd64");
  EXPECT_EQ(plan.releases[0].kernel.sha512sum_url,
            "https://github.com/siderolabs/talos/releases/download/v1.11.3/sha512sum.txt");
}

// A machine's config is its role's base config + all/role/machine patches +
// its own hostname, address (on the configured interface) and install disk.
TEST(RenderTest, HomelabMachineConfigCarriesPerMachineValues) {
  BootPlan plan = RenderHomelab();
  ASSERT_EQ(plan.machine_configs.size(), 3u);
  YAML::Node config = YAML::Load(plan.machine_configs.at("00:23:24:e7:29:41"));
  EXPECT_EQ(config["machine"]["type"].Scalar(), "controlplane");
  EXPECT_EQ(config["machine"]["network"]["hostname"].Scalar(), "controlplane2");
  YAML::Node eth0 = config["machine"]["network"]["interfaces"][0];
  EXPECT_EQ(eth0["interface"].Scalar(), "eth0");
  EXPECT_EQ(eth0["addresses"][0].Scalar(), "10.0.4.102/24");
  EXPECT_EQ(eth0["dhcp"].Scalar(), "true");             // all.yaml
  EXPECT_EQ(eth0["vip"]["ip"].Scalar(), "10.0.4.100");  // cp.yaml
  EXPECT_EQ(config["machine"]["network"]["interfaces"].size(), 1u);
  EXPECT_EQ(config["machine"]["install"]["disk"].Scalar(), "/dev/disk/by-label/TALOS_INSTALL");
  EXPECT_EQ(config["machine"]["install"]["image"].Scalar(), "ghcr.io/siderolabs/installer:v1.11.3");
  EXPECT_EQ(config["machine"]["certSANs"].size(), 4u);
  EXPECT_EQ(config["cluster"]["clusterName"].Scalar(), "the-cluster");
  EXPECT_EQ(config["cluster"]["allowSchedulingOnControlPlanes"].Scalar(), "true");
  ASSERT_EQ(plan.machines.size(), 3u);
  EXPECT_EQ(plan.machines[1], (MachineSummary{"controlplane2",
                                              "controlplane",
                                              {"00:23:24:e7:29:41"},
                                              "10.0.4.102/24",
                                              "v1.11.3",
                                              "amd64",
                                              "controlplane2",
                                              false}));
}

// The same input renders to equal plans and byte-identical Matchbox files.
TEST(RenderTest, RenderIsDeterministic) {
  auto files = ValidRepo();
  files["patches/w.yaml"] = "machine:\n  sysctls:\n    b: \"1\"\n    a: \"2\"\n";
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24",
                                          "  patches: [../patches/w.yaml]\n");
  BootPlan first = MustRender(files);
  BootPlan second = MustRender(files);
  EXPECT_EQ(first, second);
  EXPECT_EQ(ToMatchboxFiles(first), ToMatchboxFiles(second));
  EXPECT_FALSE(first.machine_configs.empty());
}

// Workers get the worker base config and worker patches, never the control-plane ones.
TEST(RenderTest, RolePatchesApplyToTheirRoleOnly) {
  auto files = ValidRepo();
  std::string cluster = test::kClusterYaml;
  cluster.insert(cluster.find("  kernelArgs:"),
                 "  patches:\n    all: [all.yaml]\n    controlplane: [cp.yaml]\n"
                 "    worker: [w.yaml]\n");
  files["cluster.yaml"] = cluster;
  files["all.yaml"] = "machine:\n  time:\n    servers: [time.example]\n";
  files["cp.yaml"] = "cluster:\n  allowSchedulingOnControlPlanes: true\n";
  files["w.yaml"] = "- op: add\n  path: /machine/nodeLabels\n  value: {tier: worker}\n";
  BootPlan plan = MustRender(files);
  YAML::Node worker = YAML::Load(plan.machine_configs.at("00:00:00:00:00:04"));
  YAML::Node cp = YAML::Load(plan.machine_configs.at("00:00:00:00:00:01"));
  EXPECT_EQ(worker["machine"]["type"].Scalar(), "worker");
  EXPECT_EQ(worker["machine"]["time"]["servers"][0].Scalar(), "time.example");
  EXPECT_EQ(worker["machine"]["nodeLabels"]["tier"].Scalar(), "worker");
  EXPECT_FALSE(worker["cluster"]["allowSchedulingOnControlPlanes"].IsDefined());
  EXPECT_EQ(cp["machine"]["time"]["servers"][0].Scalar(), "time.example");
  EXPECT_EQ(cp["cluster"]["allowSchedulingOnControlPlanes"].Scalar(), "true");
  EXPECT_FALSE(cp["machine"]["nodeLabels"].IsDefined());
}

// A machine's interface, disk selector, inline patch, pin and extra MACs all render.
TEST(RenderTest, MachineOptionsRender) {
  auto files = ValidRepo();
  files["cluster.yaml"] = std::string(test::kClusterYaml) +
                          "---\napiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata:\n"
                          "  name: next\nspec:\n  version: v1.12.0\n";
  files["machines/w1.yaml"] =
      "apiVersion: ironboot.dev/v1alpha1\nkind: Machine\nmetadata:\n  name: w1\nspec:\n"
      "  role: worker\n  macs: [00:00:00:00:00:04, 00-00-00-00-00-05]\n  address: 10.0.4.21/24\n"
      "  interface: eno1\n  installDiskSelector: {model: WDC*}\n  talosVersion: v1.12.0\n"
      "  kernelArgs: [talos.dashboard.disabled=1]\n"
      "  patches:\n    - machine: {sysctls: {vm.swappiness: \"10\"}}\n";
  BootPlan plan = MustRender(files);
  ASSERT_EQ(plan.groups.size(), 5u);
  EXPECT_EQ(plan.groups[3].id, "w1");
  EXPECT_EQ(plan.groups[4].id, "w1.mac2");
  EXPECT_EQ(plan.groups[4].selector.at("mac"), "00:00:00:00:00:05");
  EXPECT_EQ(plan.groups[4].profile, "w1");
  EXPECT_EQ(plan.machine_configs.at("00:00:00:00:00:04"),
            plan.machine_configs.at("00:00:00:00:00:05"));
  YAML::Node c = YAML::Load(plan.machine_configs.at("00:00:00:00:00:05"));
  EXPECT_EQ(c["machine"]["network"]["interfaces"][0]["interface"].Scalar(), "eno1");
  EXPECT_EQ(c["machine"]["install"]["diskSelector"]["model"].Scalar(), "WDC*");
  EXPECT_EQ(c["machine"]["install"]["image"].Scalar(), "ghcr.io/siderolabs/installer:v1.12.0");
  EXPECT_EQ(c["machine"]["sysctls"]["vm.swappiness"].Scalar(), "10");
  const auto* profile = FindProfile(plan, "w1");
  ASSERT_NE(profile, nullptr);
  EXPECT_EQ(profile->kernel, "/assets/talos/1.12.0/amd64/vmlinuz");
  EXPECT_EQ(profile->args, (std::vector<std::string>{
                               "initrd=initramfs.xz", "talos.platform=metal", "slab_nomerge",
                               "pti=on", "console=ttyS0", "talos.dashboard.disabled=1",
                               "talos.config=http://10.0.112.2:8080/config?mac=${mac:hexhyp}"}));
  ASSERT_EQ(plan.releases.size(), 2u);  // both in use
  EXPECT_EQ(plan.releases[1].version, "v1.12.0");
}

// A kernel command line over 4096 bytes is an error naming the machine.
TEST(RenderTest, KernelCommandLineOverLimitNamesMachine) {
  auto files = ValidRepo();
  std::string args = "  kernelArgs:\n";
  for (int i = 0; i < 45; ++i) {
    args += "    - x" + std::to_string(i) + "=" + std::string(90, 'a') + "\n";
  }
  files["machines/w1.yaml"] =
      MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24", args);
  EXPECT_THAT(RenderErrors(files),
              HasSubstr("machines/w1.yaml:10:5: spec.kernelArgs: machine \"w1\": kernel command "
                        "line is 4404 bytes (want at most 4096"));
}

// A machine patch that does not apply names the machine, the field and the patch file.
TEST(RenderTest, PatchFailureNamesMachineAndPatch) {
  auto files = ValidRepo();
  files["patches/bad.yaml"] = "- op: replace\n  path: /machine/nonexistent/key\n  value: 1\n";
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24",
                                          "  patches: [/patches/bad.yaml]\n");
  auto out = RenderErrors(files);
  EXPECT_THAT(out, HasSubstr("machines/w1.yaml:9:12: spec.patches: machine \"w1\": "));
  EXPECT_THAT(out, HasSubstr("patches/bad.yaml"));
}

// A cluster patch that does not apply is reported once, at the Cluster.
TEST(RenderTest, ClusterPatchFailureReportedAtCluster) {
  auto files = ValidRepo();
  std::string cluster = test::kClusterYaml;
  cluster.insert(cluster.find("  kernelArgs:"), "  patches:\n    all: [bad.yaml]\n");
  files["cluster.yaml"] = cluster;
  files["bad.yaml"] = "- op: remove\n  path: /machine/nothing\n";
  auto out = RenderErrors(files);
  EXPECT_THAT(out, HasSubstr("cluster.yaml:12:5: spec.patches: cannot patch the controlplane base "
                             "config: "));
  EXPECT_THAT(out, HasSubstr("bad.yaml"));
}

class FakeBaseConfigs : public BaseConfigSource {
 public:
  Result<std::string> BaseConfig(const Cluster&, Role role) const override {
    if (role == Role::kWorker) {
      return Fail(ErrorCode::kNotFound, "secrets bundle has no worker token");
    }
    return std::string("version: v1alpha1\nmachine:\n  type: controlplane\n  from: bundle\n");
  }
};

// Base configs come through the BaseConfigSource seam; its errors name the role's field.
TEST(RenderTest, BaseConfigsComeFromTheSeam) {
  auto state = Load(ValidRepo());
  ASSERT_TRUE(state);
  auto plan = Render(*state, FakeBaseConfigs());
  ASSERT_FALSE(plan);
  EXPECT_THAT(plan.error().ToString(),
              HasSubstr("cluster.yaml:1:1: spec.baseConfigs.worker: secrets bundle has no worker "
                        "token"));
  auto files = ValidRepo();
  files.erase("machines/w1.yaml");
  state = Load(files);
  ASSERT_TRUE(state);
  plan = Render(*state, FakeBaseConfigs());
  ASSERT_TRUE(plan) << plan.error().ToString();
  EXPECT_THAT(plan->machine_configs.at("00:00:00:00:00:01"), HasSubstr("from: bundle"));
}

// Raw Matchbox files ride along with rendered ones; an id clash is an error.
TEST(RenderTest, RawMatchboxFilesJoinThePlan) {
  auto files = ValidRepo();
  files["groups/legacy.json"] =
      R"({"id": "legacy", "profile": "legacy", "selector": {"mac": "52:54:00:aa:bb:cc"}})";
  files["profiles/legacy.json"] = R"({"id": "legacy", "boot": {"kernel": "/assets/k"}})";
  BootPlan plan = MustRender(files);
  EXPECT_NE(GroupForMac(plan.groups, "52:54:00:aa:bb:cc"), nullptr);
  EXPECT_NE(FindProfile(plan, "legacy"), nullptr);
  files["groups/legacy.json"] =
      R"({"id": "w1", "profile": "legacy", "selector": {"mac": "52:54:00:aa:bb:cc"}})";
  EXPECT_THAT(RenderErrors(files),
              HasSubstr("groups/legacy.json: id: group id \"w1\" is also used by "
                        "machines/w1.yaml"));
}

// ToStoreContent hands the boot server the plan, the verified assets and the revision.
TEST(RenderTest, ToStoreContent) {
  BootPlan plan = MustRender(ValidRepo());
  auto content =
      ToStoreContent(plan, {{"talos/1.11.3/amd64/vmlinuz", "/cache/sha512/ab"}}, "main@sha1:3f2a");
  EXPECT_EQ(content.groups, plan.groups);
  EXPECT_EQ(content.profiles, plan.profiles);
  EXPECT_EQ(content.machine_configs.size(), 4u);
  EXPECT_EQ(content.extra_assets.at("talos/1.11.3/amd64/vmlinuz"), "/cache/sha512/ab");
  EXPECT_EQ(content.revision, "main@sha1:3f2a");
  // Every MAC of a machine with a static address maps to it, without the prefix.
  for (const auto& m : plan.machines) {
    for (const auto& mac : m.macs) {
      if (m.address.empty()) {
        EXPECT_FALSE(content.machine_addresses.contains(mac)) << mac;
      } else {
        EXPECT_EQ(content.machine_addresses.at(mac), m.address.substr(0, m.address.find('/')))
            << mac;
        EXPECT_EQ(content.machine_addresses.at(mac).find('/'), std::string::npos);
      }
    }
  }
  EXPECT_FALSE(content.machine_addresses.empty());
}

// The Matchbox export serves each config as a generic template at /generic.
TEST(RenderTest, MatchboxExportUsesGenericTemplates) {
  BootPlan plan = MustRender(ValidRepo());
  auto files = ToMatchboxFiles(plan);
  ASSERT_TRUE(files.contains("groups/cp1.json"));
  ASSERT_TRUE(files.contains("profiles/cp1.json"));
  ASSERT_TRUE(files.contains("generic/cp1.yaml"));
  EXPECT_EQ(files["generic/cp1.yaml"], plan.machine_configs.at("00:00:00:00:00:01"));
  EXPECT_THAT(files["profiles/cp1.json"], HasSubstr("\"generic_id\": \"cp1.yaml\""));
  EXPECT_THAT(files["profiles/cp1.json"],
              HasSubstr("talos.config=http://10.0.112.2:8080/generic?mac=${mac:hexhyp}"));
  EXPECT_EQ(files.size(), 12u);
}

}  // namespace
}  // namespace ironboot::manifests

namespace ironboot::manifests {
namespace {

// With a RenderMemo, a re-render gives the same plan byte for byte, and a
// machine moved to another release gets a new config (the memo never hands
// back a config rendered for a different release).
TEST(RenderMemoTest, SamePlanAndNewConfigWhenTheReleaseMoves) {
  auto files = ReadRepoDir(std::string(IRONBOOT_SOURCE_DIR) + "/examples/homelab");
  ASSERT_TRUE(files.has_value());
  auto state = Load(*files, {});
  ASSERT_TRUE(state.has_value());
  RepoBaseConfigs base(*state);
  RenderMemo memo;
  auto first = Render(*state, base, &memo);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(memo.configs.size(), state->machines.size());
  auto again = Render(*state, base, &memo);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*first, *again);
  EXPECT_EQ(*first, *Render(*state, base));

  // Pin controlplane1 to a release declared only for this test.
  TalosRelease next = state->releases.front();
  next.version = *ParseTalosVersion("v1.11.6");
  next.installer_image = "ghcr.io/siderolabs/installer:v1.11.6";
  state->releases.push_back(next);
  state->machines.front().talos_version = next.version;
  auto moved = Render(*state, base, &memo);
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(*moved, *Render(*state, base));
  EXPECT_EQ(memo.configs.size(), state->machines.size() + 1);
  const std::string& mac = state->machines.front().macs.front();
  EXPECT_NE(moved->machine_configs.at(mac), first->machine_configs.at(mac));
  EXPECT_NE(moved->machine_configs.at(mac).find("installer:v1.11.6"), std::string::npos);
}

}  // namespace
}  // namespace ironboot::manifests
