// Load(): every validation rule has a failing example whose message is checked.

#include "manifests/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/manifests/manifests_test_util.h"

namespace ironboot::manifests {
namespace {

using test::LoadDiagnostics;
using test::MachineYaml;
using test::ValidRepo;
using ::testing::HasSubstr;

// The sample repo loads without any diagnostic, machines sorted, MACs normalised.
TEST(LoadTest, ValidRepoLoadsClean) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00-00-00-00-00-0A", "10.0.4.21");
  auto state = Load(files);
  ASSERT_TRUE(state.has_value()) << state.error().ToString();
  EXPECT_TRUE(state->warnings.empty()) << state->warnings.ToString();
  ASSERT_EQ(state->machines.size(), 4u);
  EXPECT_EQ(state->machines[0].name, "cp1");
  EXPECT_EQ(state->machines[3].name, "w1");
  EXPECT_EQ(state->machines[3].macs, std::vector<std::string>{"00:00:00:00:00:0a"});
  // The prefix length comes from the cluster's subnet when the address has none.
  EXPECT_EQ(state->machines[3].address->ToString(), "10.0.4.21/24");
  ASSERT_EQ(state->releases.size(), 1u);
  EXPECT_EQ(state->releases[0].kernel.url,
            "https://github.com/siderolabs/talos/releases/download/v1.11.3/vmlinuz-amd64");
  EXPECT_EQ(state->releases[0].sha512sum_url,
            "https://github.com/siderolabs/talos/releases/download/v1.11.3/sha512sum.txt");
  EXPECT_EQ(state->releases[0].initramfs.sum_file_name, "initramfs-amd64.xz");
}

// A malformed MAC is reported at its value with what was expected.
TEST(LoadTest, BadMacNamesFileLineFieldAndExpectation) {
  auto files = ValidRepo();
  files["machines/cp1.yaml"] = MachineYaml("cp1", "controlplane", "00:23:24:e7:29", "10.0.4.11/24");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/cp1.yaml:7:8: spec.mac: \"00:23:24:e7:29\" is not a MAC address "
                        "(want 6 octets)\n"));
  files["machines/cp1.yaml"] =
      MachineYaml("cp1", "controlplane", "00:23:24:e7:29:zz", "10.0.4.11/24");
  EXPECT_THAT(LoadDiagnostics(files), HasSubstr("spec.mac: \"00:23:24:e7:29:zz\" is not a MAC "
                                                "address (want hex digits"));
}

// The same MAC in another notation on another machine is a duplicate.
TEST(LoadTest, DuplicateMacInAnyNotationIsAnError) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "0000.0000.0001", "10.0.4.21/24");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/w1.yaml:7:8: spec.mac: MAC \"00:00:00:00:00:01\" of machine "
                        "\"w1\" is also machine \"cp1\"'s (at machines/cp1.yaml:7)"));
}

// Two machines with one name are refused at the second.
TEST(LoadTest, DuplicateMachineName) {
  auto files = ValidRepo();
  files["machines/zz.yaml"] = MachineYaml("cp1", "worker", "00:00:00:00:00:09", "10.0.4.29/24");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/zz.yaml:4:9: metadata.name: machine name \"cp1\" is used twice "
                        "(also at machines/cp1.yaml:4)"));
}

// Two machines with one address are refused, whatever their prefix lengths.
TEST(LoadTest, DuplicateAddress) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.11");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/w1.yaml:8:12: spec.address: address \"10.0.4.11\" of machine "
                        "\"w1\" is also machine \"cp1\"'s (at machines/cp1.yaml:8)"));
}

// An address outside Cluster spec.subnet is refused; a bad address says what is wanted.
TEST(LoadTest, AddressOutsideSubnetAndMalformedAddress) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.5.21/24");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/w1.yaml:8:12: spec.address: \"10.0.5.21/24\" is outside the "
                        "cluster's subnet 10.0.4.0/24 (Cluster spec.subnet)"));
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.300/24");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/w1.yaml:8:12: spec.address: \"10.0.4.300/24\" is not an IP "
                        "address (want CIDR, e.g. 10.0.4.101/24)"));
}

// Without a subnet an address needs its own prefix length.
TEST(LoadTest, AddressWithoutPrefixNeedsSubnet) {
  auto files = ValidRepo();
  std::string cluster = test::kClusterYaml;
  cluster.erase(cluster.find("  subnet: 10.0.4.0/24\n"), 22);
  files["cluster.yaml"] = cluster;
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/w1.yaml:8:12: spec.address: \"10.0.4.21\" has no prefix length "
                        "(want CIDR"));
}

// A machine pinned to a release the repo does not define is refused.
TEST(LoadTest, ReferencedReleaseMustExist) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] =
      MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24", "  talosVersion: v1.12.0\n");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/w1.yaml:9:17: spec.talosVersion: no TalosRelease for "
                        "v1.12.0/amd64 (defined: v1.11.3/amd64)"));
}

// Roles are controlplane or worker.
TEST(LoadTest, InvalidRole) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] = MachineYaml("w1", "master", "00:00:00:00:00:04", "10.0.4.21/24");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/w1.yaml:6:9: spec.role: \"master\" is not a role (want "
                        "controlplane or worker)"));
}

// Version strings are Talos release tags.
TEST(LoadTest, InvalidVersionStrings) {
  auto files = ValidRepo();
  std::string cluster = test::kClusterYaml;
  cluster.replace(cluster.find("talosVersion: v1.11.3"), 21, "talosVersion: 1.11");
  cluster += "  arch: sparc\n";
  files["cluster.yaml"] = cluster;
  auto out = LoadDiagnostics(files);
  EXPECT_THAT(out,
              HasSubstr("cluster.yaml:7:17: spec.talosVersion: \"1.11\" is not a Talos version "
                        "(want vMAJOR.MINOR.PATCH, e.g. v1.11.3)"));
  EXPECT_THAT(out, HasSubstr("spec.arch: \"sparc\" is not an architecture (want amd64 or arm64)"));
}

// An upgrade that skips a minor release (v1.11 -> v1.13) is refused; one minor is fine.
TEST(LoadTest, UpgradeSkippingAMinorIsRefused) {
  auto files = ValidRepo();
  std::string cluster = test::kClusterYaml;
  while (cluster.find("v1.11.3") != std::string::npos) {
    cluster.replace(cluster.find("v1.11.3"), 7, "v1.13.0");
  }
  files["cluster.yaml"] = cluster;
  LoadOptions options;
  for (const char* m : {"cp1", "cp2", "cp3", "w1"}) {
    options.current_versions[m] = "v1.11.3";
  }
  EXPECT_THAT(LoadDiagnostics(files, options),
              HasSubstr("cluster.yaml:7:17: spec.talosVersion: \"v1.13.0\" skips a minor release: "
                        "4 machines (cp1, cp2, cp3, w1) run v1.11.3; upgrade through the latest "
                        "v1.12.x first"));
  for (auto& [name, version] : options.current_versions) {
    version = "v1.12.11";
  }
  EXPECT_EQ(LoadDiagnostics(files, options), "");
  // A canary pinned two minors ahead is reported at its own pin.
  files = ValidRepo();
  files["cluster.yaml"] = std::string(test::kClusterYaml) +
                          "---\napiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata:\n"
                          "  name: next\nspec:\n  version: v1.13.9\n";
  files["machines/w1.yaml"] =
      MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24", "  talosVersion: v1.13.9\n");
  options.current_versions = {{"w1", "v1.11.3"}};
  EXPECT_THAT(LoadDiagnostics(files, options),
              HasSubstr("machines/w1.yaml:9:17: spec.talosVersion: \"v1.13.9\" skips a minor "
                        "release: machine \"w1\" runs v1.11.3"));
}

// CurrentVersions() of one revision is the starting point for the next.
TEST(LoadTest, CurrentVersionsReportsEachMachinesVersion) {
  auto state = Load(ValidRepo());
  ASSERT_TRUE(state);
  auto versions = CurrentVersions(*state);
  EXPECT_EQ(versions.size(), 4u);
  EXPECT_EQ(versions["w1"], "v1.11.3");
}

// An even number of control planes is a warning, not an error.
TEST(LoadTest, EvenControlPlanesWarns) {
  auto files = ValidRepo();
  files.erase("machines/cp3.yaml");
  auto state = Load(files);
  ASSERT_TRUE(state) << state.error().ToString();
  EXPECT_EQ(state->warnings.ErrorCount(), 0u);
  EXPECT_THAT(state->warnings.ToString(),
              HasSubstr("cluster.yaml:1:1: warning: 2 control planes (cp1, cp2): an even number "
                        "tolerates no more failures than one fewer"));
}

// An unknown field names the nearest valid one, or lists the valid ones.
TEST(LoadTest, UnknownFieldSuggestsNearest) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] =
      MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24", "  instalDisk: /dev/sdb\n");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/w1.yaml:9:3: spec.instalDisk: unknown field \"instalDisk\" (did "
                        "you mean \"installDisk\"?)"));
  files["machines/w1.yaml"] =
      MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24", "  colour: red\n");
  EXPECT_THAT(
      LoadDiagnostics(files),
      HasSubstr("machines/w1.yaml:9:3: spec.colour: unknown field \"colour\" (valid fields: "
                "role, mac, macs,"));
  std::string cluster = test::kClusterYaml;
  cluster.insert(cluster.find("  subnet:"), "  bootServerUrl: http://x\n");
  files = ValidRepo();
  files["cluster.yaml"] = cluster;
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("spec.bootServerUrl: unknown field \"bootServerUrl\" "
                        "(did you mean \"bootServerURL\"?)"));
}

// YAML syntax errors carry the position yaml-cpp reports.
TEST(LoadTest, YamlSyntaxErrorHasPosition) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] =
      "apiVersion: ironboot.dev/v1alpha1\nkind: Machine\nspec:\n  role: [worker\n";
  EXPECT_THAT(LoadDiagnostics(files), HasSubstr("machines/w1.yaml:5:1: YAML syntax error: "));
}

// Every error is collected in one run, across files.
TEST(LoadTest, CollectsEveryError) {
  auto files = ValidRepo();
  files["machines/cp1.yaml"] = MachineYaml("cp1", "boss", "xx", "10.0.4.11/24");
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00:00:00:00:00:04", "192.168.0.1/24");
  auto state = Load(files);
  ASSERT_FALSE(state);
  EXPECT_EQ(state.error().ErrorCount(), 3u) << state.error().ToString();
}

// Unknown kinds and unsupported apiVersions are refused; other YAML is ignored.
TEST(LoadTest, KindAndApiVersion) {
  auto files = ValidRepo();
  files["x.yaml"] =
      "apiVersion: ironboot.dev/v1alpha1\nkind: Machin\nmetadata: {name: a}\nspec: {}\n";
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("x.yaml:2:7: kind: \"Machin\" is not a kind of "
                        "ironboot.dev/v1alpha1 (did you mean \"Machine\"?)"));
  files["x.yaml"] = "apiVersion: ironboot.dev/v1\nkind: Machine\n";
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("x.yaml:1:13: apiVersion: \"ironboot.dev/v1\" is not "
                        "supported (want ironboot.dev/v1alpha1)"));
  files["x.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nbogus: [1]\n";
  EXPECT_EQ(LoadDiagnostics(files), "");
}

// A patch reference to a missing file names the field and the path looked for.
TEST(LoadTest, MissingPatchFile) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24",
                                          "  patches: [../patches/gpu.yaml, /patches/ok.yaml]\n");
  files["patches/ok.yaml"] = "machine: {}\n";
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/w1.yaml:9:13: spec.patches[0]: file \"../patches/gpu.yaml\" not "
                        "found (looked for \"patches/gpu.yaml\" in the repository)"));
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24",
                                          "  patches: [../../etc/passwd]\n");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("spec.patches[0]: \"../../etc/passwd\" is outside the repository"));
}

// Machines need exactly one Cluster.
TEST(LoadTest, ClusterMissingOrTwice) {
  auto files = ValidRepo();
  files.erase("cluster.yaml");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/cp1.yaml:1:1: no Cluster document in the repository"));
  files = ValidRepo();
  files["z.yaml"] =
      "apiVersion: ironboot.dev/v1alpha1\nkind: Cluster\nmetadata: {name: other}\nspec:\n"
      "  controlPlaneEndpoint: https://1.2.3.4:6443\n  talosVersion: v1.11.3\n"
      "  bootServerURL: http://1.2.3.4\n";
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("z.yaml:1:1: kind: a second Cluster \"other\" (a repo "
                        "describes one cluster; the first, \"lab\", is at "
                        "cluster.yaml:1)"));
}

// A role in use needs its base config file.
TEST(LoadTest, MissingBaseConfig) {
  auto files = ValidRepo();
  files.erase("worker.yaml");
  EXPECT_THAT(
      LoadDiagnostics(files),
      HasSubstr("cluster.yaml:1:1: spec.baseConfigs.worker: base config \"worker.yaml\" not "
                "found (machines with role worker need it"));
  files.erase("machines/w1.yaml");
  EXPECT_EQ(LoadDiagnostics(files), "");  // no workers, no worker.yaml needed
}

// talos.config is ironboot's to set; kernel args are single words.
TEST(LoadTest, KernelArgsChecked) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] = MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24",
                                          "  kernelArgs: [talos.config=http://x/y, \"a b\"]\n");
  auto out = LoadDiagnostics(files);
  EXPECT_THAT(out,
              HasSubstr("machines/w1.yaml:9:16: spec.kernelArgs[0]: \"talos.config=http://x/y\" is "
                        "set by ironboot"));
  EXPECT_THAT(out, HasSubstr("machines/w1.yaml:9:41: spec.kernelArgs[1]: \"a b\" is not one kernel "
                             "argument (want no spaces)"));
}

// Cluster URLs and durations are checked.
TEST(LoadTest, ClusterFieldsChecked) {
  auto files = ValidRepo();
  files["cluster.yaml"] =
      "apiVersion: ironboot.dev/v1alpha1\nkind: Cluster\nmetadata: {name: lab}\nspec:\n"
      "  controlPlaneEndpoint: 10.0.4.100:6443\n  talosVersion: v1.11.3\n"
      "  bootServerURL: ftp://10.0.112.2\n  subnet: 10.0.4.0\n"
      "  upgrade: {strategy: yolo, healthTimeout: soon, maxUnavailable: {controlplane: 2}}\n";
  auto out = LoadDiagnostics(files);
  EXPECT_THAT(out,
              HasSubstr("cluster.yaml:5:25: spec.controlPlaneEndpoint: \"10.0.4.100:6443\" is not "
                        "a URL (want https://host:port"));
  EXPECT_THAT(out, HasSubstr("spec.bootServerURL: \"ftp://10.0.112.2\" is not a URL"));
  EXPECT_THAT(out, HasSubstr("spec.subnet: \"10.0.4.0\" is not a subnet (want CIDR"));
  EXPECT_THAT(out,
              HasSubstr("spec.upgrade.strategy: \"yolo\" is not a strategy (want pxe-reboot or "
                        "talos-upgrade)"));
  EXPECT_THAT(out, HasSubstr("spec.upgrade.healthTimeout: \"soon\" is not a duration"));
  EXPECT_THAT(out,
              HasSubstr("spec.upgrade.maxUnavailable.controlplane: \"2\" is not allowed (want 1"));
}

// Release checksums: a digest must be 128 hex digits, and a custom URL needs a way to verify.
TEST(LoadTest, ReleaseChecksumsChecked) {
  auto files = ValidRepo();
  files["cluster.yaml"] = std::string(test::kClusterYaml) +
                          "  arch: arm64\n  kernel: {url: https://mirror/k, sha512: abc}\n"
                          "  initramfs: {url: https://mirror/i}\n";
  auto out = LoadDiagnostics(files);
  EXPECT_THAT(out, HasSubstr("spec.kernel.sha512: \"abc\" is not a SHA-512 digest (want 128 hex "
                             "digits)"));
  EXPECT_THAT(out, HasSubstr("spec.initramfs: no way to verify \"https://mirror/i\" (want "
                             "spec.initramfs.sha512 or spec.sha512sumURL)"));
}

// Machine names become hostnames.
TEST(LoadTest, MachineNameMustBeAHostname) {
  auto files = ValidRepo();
  files["machines/w1.yaml"] =
      MachineYaml("Worker_1", "worker", "00:00:00:00:00:04", "10.0.4.21/24");
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("machines/w1.yaml:4:9: metadata.name: \"Worker_1\" is not a valid name "
                        "(want lowercase letters, digits and '-'"));
}

// Raw Matchbox groups/profiles load as they are; a group claiming a machine's MAC is refused.
TEST(LoadTest, RawMatchboxFiles) {
  auto files = ValidRepo();
  files["groups/old.json"] =
      R"({"id": "old", "profile": "old", "selector": {"mac": "52-54-00-AA-BB-CC"}})";
  files["profiles/old.json"] =
      R"({"id": "old", "boot": {"kernel": "/assets/k", "initrd": ["/assets/i"], "args": ["a"]}})";
  auto state = Load(files);
  ASSERT_TRUE(state) << state.error().ToString();
  ASSERT_EQ(state->raw_groups.size(), 1u);
  EXPECT_EQ(state->raw_groups[0].selector.at("mac"), "52:54:00:aa:bb:cc");
  EXPECT_EQ(state->raw_profiles[0].initrd, std::vector<std::string>{"/assets/i"});

  files["groups/old.json"] =
      R"({"id": "old", "profile": "old", "selector": {"mac": "00:00:00:00:00:04"}})";
  EXPECT_THAT(LoadDiagnostics(files),
              HasSubstr("groups/old.json: selector.mac: MAC \"00:00:00:00:00:04\" "
                        "is also machine \"w1\"'s"));
  files["groups/old.json"] = "{\n  \"id\": \"old\",\n  \"profile\" \"old\"\n}";
  EXPECT_THAT(LoadDiagnostics(files), HasSubstr("groups/old.json:3:17: JSON syntax error: "));
}

}  // namespace
}  // namespace ironboot::manifests

namespace ironboot::manifests {
namespace {

// Documents of the wrong shape everywhere give diagnostics, never a crash.
TEST(LoadTest, WrongShapesAreDiagnosedNotFatal) {
  const char* docs[] = {
      "apiVersion: ironboot.dev/v1alpha1\nkind: Machine\nmetadata: x\nspec: [1, 2]\n",
      "apiVersion: ironboot.dev/v1alpha1\nkind: Machine\nmetadata: {name: a}\nspec:\n"
      "  role: {x: 1}\n  macs: {a: b}\n  patches: nope\n  kernelArgs: [[1]]\n"
      "  installDiskSelector: [1]\n  paused: maybe\n",
      "apiVersion: ironboot.dev/v1alpha1\nkind: Cluster\nmetadata: {name: c}\nspec:\n"
      "  patches: [a]\n  baseConfigs: x\n  upgrade: [1]\n  kernelArgs: x\n",
      "apiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata: {name: r}\nspec:\n"
      "  version: [v1]\n  kernel: x\n",
      "apiVersion: ironboot.dev/v1alpha1\nkind: [Machine]\n",
      "apiVersion: ironboot.dev/v1alpha1\n? [complex, key]\n: value\nkind: Machine\n",
  };
  for (const char* doc : docs) {
    auto files = test::ValidRepo();
    files["odd.yaml"] = doc;
    auto state = Load(files);
    ASSERT_FALSE(state) << doc;
    EXPECT_THAT(state.error().ToString(), HasSubstr("odd.yaml:")) << doc;
  }
  auto files = test::ValidRepo();
  files["odd.yaml"] = std::string(docs[1]);
  std::string out = test::LoadDiagnostics(files);
  EXPECT_THAT(out, HasSubstr("spec.role: want a string, got a map"));
  EXPECT_THAT(out, HasSubstr("spec.macs: want a list of strings, got a map"));
  EXPECT_THAT(out, HasSubstr("spec.paused: \"maybe\" is not a boolean (want true or false)"));
}

}  // namespace
}  // namespace ironboot::manifests

namespace ironboot::manifests {
namespace {

// Fields that exclude each other, a bad Kubernetes version and duplicate releases.
TEST(LoadTest, ExclusiveFieldsAndDuplicateReleases) {
  auto files = test::ValidRepo();
  files["machines/w1.yaml"] =
      "apiVersion: ironboot.dev/v1alpha1\nkind: Machine\nmetadata: {name: w1}\nspec:\n"
      "  role: worker\n  mac: 00:00:00:00:00:04\n  macs: [00:00:00:00:00:05]\n"
      "  installDisk: /dev/sda\n  installDiskSelector: {size: 4GB}\n";
  files["cluster.yaml"] = std::string(test::kClusterYaml) +
                          "---\napiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata:\n"
                          "  name: again\nspec:\n  version: v1.11.3\n";
  files["k.yaml"] =
      "apiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata: {name: v1.11.3}\n"
      "spec: {version: v1.12.0}\n";
  std::string out = test::LoadDiagnostics(files);
  EXPECT_THAT(out, HasSubstr("machines/w1.yaml:7:9: spec.macs: set either spec.mac or spec.macs, "
                             "not both"));
  EXPECT_THAT(out, HasSubstr("machines/w1.yaml:9:24: spec.installDiskSelector: set either "
                             "spec.installDisk or spec.installDiskSelector, not both"));
  EXPECT_THAT(out, HasSubstr("cluster.yaml:25:12: spec.version: TalosRelease \"v1.11.3/amd64\" is "
                             "defined twice (also \"v1.11.3\" at cluster.yaml:13)"));
  EXPECT_THAT(out, HasSubstr("k.yaml:1:1: metadata.name: TalosRelease name \"v1.11.3\" is used "
                             "twice (also at cluster.yaml:13)"));

  files = test::ValidRepo();
  std::string cluster = test::kClusterYaml;
  cluster.insert(cluster.find("  subnet:"), "  kubernetesVersion: latest\n");
  files["cluster.yaml"] = cluster;
  EXPECT_THAT(test::LoadDiagnostics(files),
              HasSubstr("cluster.yaml:9:22: spec.kubernetesVersion: \"latest\" is not a Kubernetes "
                        "version (want MAJOR.MINOR.PATCH, e.g. 1.34.1)"));
}

}  // namespace
}  // namespace ironboot::manifests
