// Tests of DecidePublish, the boot reconciler's pure decision: machines whose
// release assets failed verification keep their previous plan (or are left
// out), every other machine moves on, and the output order is deterministic.

#include "reconcilers/boot_publish.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ironboot::reconcilers {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kServer[] = "http://10.0.112.2:8080";

std::string AssetPath(const std::string& version, const std::string& file) {
  return "talos/" + version + "/amd64/" + file;
}

manifests::PlanRelease Release(const std::string& version) {
  manifests::PlanRelease r;
  r.version = version;
  r.arch = "amd64";
  r.kernel.url = "file:///srv/" + version + "/vmlinuz";
  r.kernel.served_path = AssetPath(version, "vmlinuz");
  r.initramfs.url = "file:///srv/" + version + "/initramfs.xz";
  r.initramfs.served_path = AssetPath(version, "initramfs.xz");
  r.installer_image = "ghcr.io/siderolabs/installer:" + version;
  return r;
}

// Adds machine `name` (one MAC, its own profile "<name>-<version>") to `plan`.
// `tag` goes into its kernel args and config, to tell revisions apart.
void AddMachine(manifests::BootPlan& plan, const std::string& name, const std::string& mac,
                const std::string& version, const std::string& tag) {
  std::string profile = name + "-" + version;
  plan.groups.push_back({name, name, profile, {{"mac", mac}}, nlohmann::json::object(), ""});
  plan.profiles.push_back({profile,
                           profile,
                           std::string(kServer) + "/assets/" + AssetPath(version, "vmlinuz"),
                           {std::string(kServer) + "/assets/" + AssetPath(version, "initramfs.xz")},
                           {"talos.platform=metal", "tag=" + tag},
                           "",
                           ""});
  plan.machine_configs[mac] = "machine:\n  network:\n    hostname: " + name + " # " + tag + "\n";
  plan.machines.push_back({name, "controlplane", {mac}, "", version, "amd64", profile, false});
  bool have = std::any_of(plan.releases.begin(), plan.releases.end(),
                          [&](const manifests::PlanRelease& r) { return r.version == version; });
  if (!have) {
    plan.releases.push_back(Release(version));
  }
}

std::map<std::string, std::filesystem::path> Verified(const std::string& version) {
  return {{AssetPath(version, "vmlinuz"), "/state/assets/sha512/k" + version},
          {AssetPath(version, "initramfs.xz"), "/state/assets/sha512/i" + version}};
}

std::vector<std::string> GroupIds(const manifests::BootPlan& plan) {
  std::vector<std::string> ids;
  for (const auto& g : plan.groups) {
    ids.push_back(g.id + "->" + g.profile);
  }
  return ids;
}

std::vector<std::string> ProfileIds(const manifests::BootPlan& plan) {
  std::vector<std::string> ids;
  for (const auto& p : plan.profiles) {
    ids.push_back(p.id);
  }
  return ids;
}

std::vector<std::string> MachineNames(const manifests::BootPlan& plan) {
  std::vector<std::string> names;
  for (const auto& m : plan.machines) {
    names.push_back(m.name + "@" + m.talos_version);
  }
  return names;
}

// With every release verified the desired plan is published as it is, with
// the verified assets, and nothing is held back.
TEST(DecidePublishTest, AllVerifiedPublishesDesired) {
  manifests::BootPlan desired;
  AddMachine(desired, "cp1", "00:23:24:e7:29:40", "v1.11.3", "r1");
  AddMachine(desired, "cp2", "00:23:24:e7:29:41", "v1.11.3", "r1");
  AssetOutcome assets{Verified("v1.11.3"), {}};

  auto d = DecidePublish("main@sha1:1111", desired, assets, nullptr);

  EXPECT_THAT(d.held_back, IsEmpty());
  EXPECT_EQ(d.published.revision, "main@sha1:1111");
  EXPECT_EQ(d.published.plan, desired);
  EXPECT_EQ(d.published.assets, assets.verified);
}

// Without a previous plan, a machine whose release failed is not served at
// all (no group, profile, config or release), is reported with the reason,
// and the other machines are published.
TEST(DecidePublishTest, NoPreviousPlanLeavesHeldBackMachineOut) {
  manifests::BootPlan desired;
  AddMachine(desired, "cp1", "00:23:24:e7:29:40", "v1.12.0", "r1");
  AddMachine(desired, "cp2", "00:23:24:e7:29:41", "v1.11.3", "r1");
  AssetOutcome assets{Verified("v1.11.3"),
                      {{"v1.12.0/amd64", "talos v1.12.0 amd64 kernel: SHA-512 mismatch"}}};

  auto d = DecidePublish("main@sha1:2222", desired, assets, nullptr);

  ASSERT_EQ(d.held_back.size(), 1u);
  EXPECT_EQ(d.held_back[0].machine, "cp1");
  EXPECT_EQ(d.held_back[0].release, "v1.12.0/amd64");
  EXPECT_EQ(d.held_back[0].reason, "talos v1.12.0 amd64 kernel: SHA-512 mismatch");
  EXPECT_FALSE(d.held_back[0].kept_previous);
  EXPECT_THAT(GroupIds(d.published.plan), ElementsAre("cp2->cp2-v1.11.3"));
  EXPECT_THAT(ProfileIds(d.published.plan), ElementsAre("cp2-v1.11.3"));
  EXPECT_THAT(MachineNames(d.published.plan), ElementsAre("cp2@v1.11.3"));
  EXPECT_THAT(d.published.plan.machine_configs,
              ElementsAre(Pair("00:23:24:e7:29:41", testing::HasSubstr("cp2"))));
  ASSERT_EQ(d.published.plan.releases.size(), 1u);
  EXPECT_EQ(d.published.plan.releases[0].version, "v1.11.3");
  EXPECT_EQ(d.published.assets, Verified("v1.11.3"));
}

// With a previous plan, a held-back machine keeps exactly its previous group,
// profile, config and the assets that profile points at; the other machines
// move on to the new revision.
TEST(DecidePublishTest, PreviousPlanKeptForHeldBackMachineOthersMoveOn) {
  PublishedPlan previous;
  previous.revision = "main@sha1:1111";
  AddMachine(previous.plan, "cp1", "00:23:24:e7:29:40", "v1.11.3", "old");
  AddMachine(previous.plan, "cp2", "00:23:24:e7:29:41", "v1.11.3", "old");
  previous.assets = Verified("v1.11.3");

  // cp1 is upgraded to a release whose assets fail; cp2 changes its args.
  manifests::BootPlan desired;
  AddMachine(desired, "cp1", "00:23:24:e7:29:40", "v1.12.0", "new");
  AddMachine(desired, "cp2", "00:23:24:e7:29:41", "v1.11.3", "new");
  AssetOutcome assets{Verified("v1.11.3"), {{"v1.12.0/amd64", "download failed"}}};

  auto d = DecidePublish("main@sha1:3333", desired, assets, &previous);

  ASSERT_EQ(d.held_back.size(), 1u);
  EXPECT_EQ(d.held_back[0].machine, "cp1");
  EXPECT_TRUE(d.held_back[0].kept_previous);
  EXPECT_EQ(d.published.revision, "main@sha1:3333");
  EXPECT_THAT(GroupIds(d.published.plan), ElementsAre("cp1->cp1-v1.11.3", "cp2->cp2-v1.11.3"));
  EXPECT_THAT(MachineNames(d.published.plan), ElementsAre("cp1@v1.11.3", "cp2@v1.11.3"));
  const auto& profiles = d.published.plan.profiles;
  ASSERT_EQ(profiles.size(), 2u);
  EXPECT_EQ(profiles[0], previous.plan.profiles[0]);  // cp1: the old profile, old args
  EXPECT_THAT(profiles[0].args, testing::Contains("tag=old"));
  EXPECT_THAT(profiles[1].args, testing::Contains("tag=new"));  // cp2 moved on
  EXPECT_THAT(d.published.plan.machine_configs["00:23:24:e7:29:40"], testing::HasSubstr("# old"));
  EXPECT_THAT(d.published.plan.machine_configs["00:23:24:e7:29:41"], testing::HasSubstr("# new"));
  // Only the verified release is listed; the kept profile's assets are served.
  ASSERT_EQ(d.published.plan.releases.size(), 1u);
  EXPECT_EQ(d.published.plan.releases[0].version, "v1.11.3");
  EXPECT_EQ(d.published.assets, Verified("v1.11.3"));
}

// A held-back machine that was served an older release keeps that release's
// assets even when the new revision no longer uses that release anywhere.
TEST(DecidePublishTest, KeptMachineBringsItsOldAssets) {
  PublishedPlan previous;
  previous.revision = "main@sha1:1111";
  AddMachine(previous.plan, "cp1", "00:23:24:e7:29:40", "v1.11.3", "old");
  previous.assets = Verified("v1.11.3");

  manifests::BootPlan desired;
  AddMachine(desired, "cp1", "00:23:24:e7:29:40", "v1.12.0", "new");
  AddMachine(desired, "cp2", "00:23:24:e7:29:41", "v1.12.1", "new");
  AssetOutcome assets{Verified("v1.12.1"), {{"v1.12.0/amd64", "SHA-512 mismatch"}}};

  auto d = DecidePublish("main@sha1:4444", desired, assets, &previous);

  EXPECT_THAT(MachineNames(d.published.plan), ElementsAre("cp1@v1.11.3", "cp2@v1.12.1"));
  auto expected_assets = Verified("v1.12.1");
  expected_assets.merge(Verified("v1.11.3"));
  EXPECT_EQ(d.published.assets, expected_assets);
}

// A machine that is new in this revision and on a failed release is left out
// even though a previous plan exists (it has nothing to keep).
TEST(DecidePublishTest, NewMachineOnFailedReleaseNotServed) {
  PublishedPlan previous;
  AddMachine(previous.plan, "cp1", "00:23:24:e7:29:40", "v1.11.3", "old");
  previous.assets = Verified("v1.11.3");

  manifests::BootPlan desired;
  AddMachine(desired, "cp1", "00:23:24:e7:29:40", "v1.11.3", "new");
  AddMachine(desired, "w1", "00:23:24:e7:29:50", "v1.12.0", "new");
  AssetOutcome assets{Verified("v1.11.3"), {{"v1.12.0/amd64", "not found"}}};

  auto d = DecidePublish("main@sha1:5555", desired, assets, &previous);

  ASSERT_EQ(d.held_back.size(), 1u);
  EXPECT_EQ(d.held_back[0].machine, "w1");
  EXPECT_FALSE(d.held_back[0].kept_previous);
  EXPECT_THAT(MachineNames(d.published.plan), ElementsAre("cp1@v1.11.3"));
  EXPECT_EQ(d.published.plan.machine_configs.count("00:23:24:e7:29:50"), 0u);
}

// The result is sorted (groups and profiles by id, machines by name) whatever
// order the inputs come in, and the same inputs give the same output.
TEST(DecidePublishTest, DeterministicOrder) {
  PublishedPlan previous;
  AddMachine(previous.plan, "b", "00:00:00:00:00:0b", "v1.11.3", "old");
  AddMachine(previous.plan, "d", "00:00:00:00:00:0d", "v1.11.3", "old");
  previous.assets = Verified("v1.11.3");

  manifests::BootPlan desired;
  for (const char* name : {"e", "d", "c", "b", "a"}) {
    std::string mac = std::string("00:00:00:00:00:0") + name;
    AddMachine(desired, name, mac,
               std::string(name) == "b" || std::string(name) == "d" ? "v1.12.0" : "v1.11.3", "new");
  }
  AssetOutcome assets{Verified("v1.11.3"), {{"v1.12.0/amd64", "mismatch"}}};

  auto first = DecidePublish("r", desired, assets, &previous);
  auto second = DecidePublish("r", desired, assets, &previous);

  EXPECT_THAT(
      GroupIds(first.published.plan),
      ElementsAre("a->a-v1.11.3", "b->b-v1.11.3", "c->c-v1.11.3", "d->d-v1.11.3", "e->e-v1.11.3"));
  EXPECT_THAT(ProfileIds(first.published.plan),
              ElementsAre("a-v1.11.3", "b-v1.11.3", "c-v1.11.3", "d-v1.11.3", "e-v1.11.3"));
  EXPECT_THAT(MachineNames(first.published.plan),
              ElementsAre("a@v1.11.3", "b@v1.11.3", "c@v1.11.3", "d@v1.11.3", "e@v1.11.3"));
  EXPECT_EQ(first.published.plan, second.published.plan);
  EXPECT_EQ(first.published.assets, second.published.assets);
  std::vector<std::string> held;
  for (const auto& h : first.held_back) {
    held.push_back(h.machine);
  }
  EXPECT_THAT(held, UnorderedElementsAre("b", "d"));
}

}  // namespace
}  // namespace ironboot::reconcilers
