// Tests of the apply-mode decision against Talos's own rule, read from its
// source: CanApplyImmediate (v1alpha1_runtime.go) for v1.11-v1.13, nothing for
// v1.14. One row per field of the v1alpha1 document, for each minor, starting
// from Talos's golden worker config; then multi-document configs, version
// changes, no-change cases and every error a caller can meet.

#include "talos/apply_mode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>

#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

std::string Golden(const std::string& rel) {
  return testutil::ReadFile(std::string(IRONBOOT_SHARED_DIR) + "/talos/testdata/stability/" + rel);
}

// The golden worker config of the Talos minor closest to `version` (the
// goldens go up to v1.12; later minors generate the same shape).
std::string BaseWorker(const std::string& version) {
  return Golden(version.starts_with("v1.11.") ? "v1.11/base-worker.yaml"
                                              : "v1.12/base-worker.yaml");
}

Value ParseOne(const std::string& yaml) {
  auto docs = ParseYamlDocuments(yaml, "test value");
  EXPECT_TRUE(docs.has_value() && docs->size() == 1) << yaml;
  return docs && !docs->empty() ? docs->front() : Value{};
}

// `config` with the dotted `path` of its v1alpha1 (first) document set to the
// YAML `value` (maps on the way are created), or removed when `value` is empty.
std::string Edit(const std::string& config, const std::string& path, const std::string& value) {
  auto docs = ParseYamlDocuments(config, "base");
  EXPECT_TRUE(docs.has_value()) << docs.error().message;
  Value* node = &docs->front();
  std::stringstream segments(path);
  std::string seg;
  std::vector<std::string> keys;
  while (std::getline(segments, seg, '.')) {
    keys.push_back(seg);
  }
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    Value* next = node->Find(keys[i]);
    if (next == nullptr || !next->IsMap()) {
      next = &node->Set(keys[i], Value::Map());
    }
    node = next;
  }
  if (value.empty()) {
    EXPECT_TRUE(node->Erase(keys.back())) << path;
  } else {
    node->Set(keys.back(), ParseOne(value));
  }
  return EmitYaml(*docs);
}

ApplyDecision MustDecide(const std::string& running_version, const std::string& running,
                         const std::string& desired_version, const std::string& desired) {
  auto d = DecideApplyMode({running_version, running}, {desired_version, desired});
  EXPECT_TRUE(d.has_value()) << d.error().message;
  return d ? *d : ApplyDecision{};
}

// One field of the v1alpha1 document, the value it is set to, and whether
// CanApplyImmediate (v1.11-v1.13) lets it change without a reboot.
struct FieldRow {
  const char* path;
  const char* value;
  bool live_before_1_14;
};

// Talos's list, in its order (v1alpha1_runtime.go, the same in v1.11.0-v1.13.9),
// then every other field of Config, MachineConfig and FeaturesConfig. Nested
// paths show that everything under a listed field is covered.
const FieldRow kFields[] = {
    // Applied live: the fields CanApplyImmediate copies from the running config.
    {"debug", "true", true},
    {"cluster.clusterName", "other", true},
    {"cluster.apiServer.image", "registry.k8s.io/kube-apiserver:v1.29.0", true},
    {"machine.ca", "{crt: Zm9v, key: ''}", true},
    {"machine.acceptedCAs", "[{crt: Zm9v}]", true},
    {"machine.time", "{servers: [time.cloudflare.com]}", true},
    {"machine.certSANs", "[10.0.0.1]", true},
    {"machine.install.disk", "/dev/sda", true},
    {"machine.network.hostname", "worker-1", true},
    {"machine.sysfs", "{devices.system.cpu.cpu0.cpufreq.scaling_governor: performance}", true},
    {"machine.sysctls", "{net.ipv4.ip_forward: '1'}", true},
    {"machine.logging", "{destinations: [{endpoint: 'tcp://10.0.0.1:5000/', format: json_lines}]}",
     true},
    {"machine.controlPlane", "{scheduler: {disabled: true}}", true},
    {"machine.kubelet.image", "ghcr.io/siderolabs/kubelet:v1.29.0", true},
    {"machine.kernel", "{modules: [{name: drbd}]}", true},
    {"machine.registries", "{mirrors: {docker.io: {endpoints: ['https://mirror.example']}}}", true},
    {"machine.pods", "[{apiVersion: v1, kind: Pod, metadata: {name: nginx}}]", true},
    {"machine.seccompProfiles", "[{name: audit.json, value: {defaultAction: SCMP_ACT_LOG}}]", true},
    {"machine.nodeAnnotations", "{example.com/owner: team-a}", true},
    {"machine.nodeLabels", "{example.com/role: storage}", true},
    {"machine.nodeTaints", "{example.com/dedicated: 'storage:NoSchedule'}", true},
    {"machine.features.kubernetesTalosAPIAccess",
     "{enabled: true, allowedRoles: ['os:reader'], allowedKubernetesNamespaces: [kube-system]}",
     true},
    {"machine.features.kubePrism.port", "7446", true},
    {"machine.features.hostDNS.enabled", "false", true},
    {"machine.features.imageCache", "{localEnabled: true}", true},
    {"machine.features.nodeAddressSortAlgorithm", "v2", true},
    // Needs a reboot before v1.14: everything CanApplyImmediate does not copy.
    {"persist", "false", false},
    {"machine.type", "controlplane", false},
    {"machine.token", "abcdef.0123456789abcdef", false},
    {"machine.disks", "[{device: /dev/sdb, partitions: [{mountpoint: /var/mnt/data}]}]", false},
    {"machine.files", "[{content: hello, path: /var/etc/hello, op: create, permissions: 0o644}]",
     false},
    {"machine.env", "{http_proxy: 'http://proxy.example:3128'}", false},
    {"machine.systemDiskEncryption",
     "{ephemeral: {provider: luks2, keys: [{nodeID: {}, slot: 0}]}}", false},
    {"machine.udev", "{rules: ['SUBSYSTEM==\"drm\", GROUP=\"44\", MODE=\"0660\"']}", false},
    {"machine.baseRuntimeSpecOverrides",
     "{process: {rlimits: [{type: RLIMIT_NOFILE, hard: 1024, soft: 1024}]}}", false},
    {"machine.features.rbac", "false", false},
    {"machine.features.stableHostname", "false", false},
    {"machine.features.apidCheckExtKeyUsage", "false", false},
    {"machine.features.diskQuotaSupport", "false", false},
};

void PrintTo(const FieldRow& row, std::ostream* os) {
  *os << row.path << ": " << row.value;
}

// One release per minor; the rule is the same in every patch release of a
// minor (checked in upstream source, tag by tag).
const char* const kVersions[] = {"v1.11.3", "v1.12.11", "v1.13.9", "v1.14.0-rc.1"};

class FieldRuleTest : public ::testing::TestWithParam<std::tuple<const char*, FieldRow>> {};

TEST_P(FieldRuleTest, ChangingOneFieldGivesTalosOwnMode) {
  // Changing this one field from the golden worker config is apply-now when the version's rule
  // takes it live (always from v1.14), else needs-reboot naming exactly that field.
  const auto& [version, row] = GetParam();
  std::string running = BaseWorker(version);
  std::string desired = Edit(running, row.path, row.value);
  auto d = MustDecide(version, running, version, desired);
  bool live = row.live_before_1_14 || std::string(version).starts_with("v1.14.");
  ASSERT_FALSE(d.diff.Empty());
  if (live) {
    EXPECT_EQ(d.mode, ApplyMode::kApplyNow) << d.reason;
    EXPECT_THAT(d.reboot_fields, IsEmpty());
  } else {
    EXPECT_EQ(d.mode, ApplyMode::kNeedsReboot);
    EXPECT_THAT(d.reboot_fields, ElementsAre(row.path));
    EXPECT_THAT(d.reason, HasSubstr(row.path));
  }
}

std::string RowName(const ::testing::TestParamInfo<FieldRuleTest::ParamType>& info) {
  std::string name = std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param).path;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) {
      c = '_';
    }
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(EveryFieldEveryMinor, FieldRuleTest,
                         ::testing::Combine(::testing::ValuesIn(kVersions),
                                            ::testing::ValuesIn(kFields)),
                         RowName);

TEST(ApplyModeTest, RemovingALiveFieldIsApplyNow) {
  // Removing a copied field (the whole kubelet section, debug, cluster) is live too: Talos copies
  // the running value over the missing one.
  std::string running = BaseWorker("v1.12.11");
  for (const char* path : {"machine.kubelet", "debug", "cluster", "machine.install"}) {
    auto d = MustDecide("v1.12.11", running, "v1.12.11", Edit(running, path, ""));
    EXPECT_EQ(d.mode, ApplyMode::kApplyNow) << path << ": " << d.reason;
  }
}

TEST(ApplyModeTest, FeaturesSectionOnOneSideOnlyNeedsReboot) {
  // Talos copies the live features only when both configs have `features`; dropping the section
  // (or adding it where there was none) compares it whole, so even kubePrism alone needs a reboot.
  std::string running = BaseWorker("v1.13.9");
  auto dropped = MustDecide("v1.13.9", running, "v1.13.9", Edit(running, "machine.features", ""));
  EXPECT_EQ(dropped.mode, ApplyMode::kNeedsReboot);
  EXPECT_THAT(dropped.reboot_fields, ElementsAre("machine.features"));

  std::string without = Edit(running, "machine.features", "");
  auto added = MustDecide("v1.13.9", without, "v1.13.9",
                          Edit(without, "machine.features", "{kubePrism: {enabled: true}}"));
  EXPECT_EQ(added.mode, ApplyMode::kNeedsReboot);
  EXPECT_THAT(added.reboot_fields, ElementsAre("machine.features"));

  auto empty_features = Edit(running, "machine.features", "{}");
  auto live = MustDecide("v1.13.9", empty_features, "v1.13.9",
                         Edit(empty_features, "machine.features.kubePrism", "{enabled: true}"));
  EXPECT_EQ(live.mode, ApplyMode::kApplyNow) << live.reason;
}

TEST(ApplyModeTest, MachineSectionOnOneSideOnlyNeedsReboot) {
  // Without a machine section on one side nothing under machine is copied: the whole section
  // forces a reboot (v1.12), and is taken live on v1.14.
  std::string running = "version: v1alpha1\ncluster: {clusterName: a}\n";
  std::string desired =
      "version: v1alpha1\nmachine: {kubelet: {image: k}}\ncluster: {clusterName: a}\n";
  auto d = MustDecide("v1.12.0", running, "v1.12.0", desired);
  EXPECT_EQ(d.mode, ApplyMode::kNeedsReboot);
  EXPECT_THAT(d.reboot_fields, ElementsAre("machine"));
  EXPECT_EQ(MustDecide("v1.14.0", running, "v1.14.0", desired).mode, ApplyMode::kApplyNow);
}

TEST(ApplyModeTest, ReportsOnlyTheFieldsThatForceTheReboot) {
  // A change mixing live fields and reboot fields is needs-reboot and names only the latter,
  // in document order, while the diff keeps every change.
  std::string running = BaseWorker("v1.11.6");
  std::string desired =
      Edit(running, "machine.kubelet.image", "ghcr.io/siderolabs/kubelet:v1.29.0");
  desired = Edit(desired, "machine.env", "{GOMAXPROCS: '2'}");
  desired = Edit(desired, "persist", "false");
  desired = Edit(desired, "machine.network.hostname", "w1");
  auto d = MustDecide("v1.11.6", running, "v1.11.6", desired);
  EXPECT_EQ(d.mode, ApplyMode::kNeedsReboot);
  EXPECT_THAT(d.reboot_fields, ElementsAre("persist", "machine.env"));
  EXPECT_EQ(d.reason, "Talos v1.11.6 changes persist, machine.env only with a reboot");
  EXPECT_EQ(d.diff.Lines().size(), 4u);
}

TEST(ApplyModeTest, RebootFieldsAreLeafPaths) {
  // A change deep inside a reboot field names the leaf path, e.g. one file's content.
  std::string running =
      Edit(BaseWorker("v1.12.11"), "machine.files", "[{content: a, path: /var/etc/a, op: create}]");
  std::string desired =
      Edit(BaseWorker("v1.12.11"), "machine.files", "[{content: b, path: /var/etc/a, op: create}]");
  auto d = MustDecide("v1.12.11", running, "v1.12.11", desired);
  EXPECT_THAT(d.reboot_fields, ElementsAre("machine.files[0].content"));
}

TEST(ApplyModeTest, OtherDocumentsNeverForceAReboot) {
  // Before v1.14 only the v1alpha1 document is compared: changing, adding and removing
  // HostnameConfig / RegistryMirrorConfig / LinkConfig documents is apply-now.
  std::string running = Golden("v1.12/overrides-worker.yaml");
  std::string changed = running;
  changed.replace(changed.find("auto: stable"), 12, "hostname: worker-7");
  std::string added =
      running + "---\napiVersion: v1alpha1\nkind: LinkConfig\nname: eth1\nmtu: 9000\n";
  auto without_mirror = ParseMachineConfig(running, "r");
  ASSERT_TRUE(without_mirror.has_value());
  std::vector<Value> kept;
  for (const auto& doc : without_mirror->documents) {
    if (doc.key.kind != "RegistryMirrorConfig") {
      kept.push_back(doc.body);
    }
  }
  std::string removed = EmitYaml(kept);
  for (const char* version : {"v1.12.0", "v1.13.9"}) {
    for (const auto& [name, desired] : {std::pair{"changed", changed}, std::pair{"added", added},
                                        std::pair{"removed", removed}}) {
      auto d = MustDecide(version, running, version, desired);
      EXPECT_EQ(d.mode, ApplyMode::kApplyNow) << version << " " << name << ": " << d.reason;
      EXPECT_EQ(d.diff.documents.size(), 1u) << name;
    }
  }
  auto d = MustDecide("v1.12.0", running, "v1.12.0", added);
  EXPECT_THAT(d.diff.Lines(), ElementsAre("LinkConfig/eth1 added"));
  EXPECT_EQ(d.reason, "Talos v1.12.0 applies 1 config change without a reboot");
}

TEST(ApplyModeTest, RunningConfigWithoutV1Alpha1NeedsRebootBefore114) {
  // A node whose config has no v1alpha1 document fails CanApplyImmediate ("current config is
  // not v1alpha1"): needs-reboot on v1.13, apply-now on v1.14.
  std::string running = "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n";
  std::string desired = BaseWorker("v1.13.9");
  auto d = MustDecide("v1.13.9", running, "v1.13.9", desired);
  EXPECT_EQ(d.mode, ApplyMode::kNeedsReboot);
  EXPECT_THAT(d.reboot_fields, ElementsAre("v1alpha1"));
  EXPECT_EQ(MustDecide("v1.14.0", running, "v1.14.0", desired).mode, ApplyMode::kApplyNow);
}

TEST(ApplyModeTest, VersionChangeIsRelease) {
  // A different Talos version (minor or patch) is release, whatever the config change; the diff
  // still lists what the upgrade step carries, and no reboot fields are given.
  std::string running = BaseWorker("v1.11.3");
  auto same = MustDecide("v1.11.3", running, "v1.12.11", running);
  EXPECT_EQ(same.mode, ApplyMode::kRelease);
  EXPECT_TRUE(same.diff.Empty());
  EXPECT_EQ(same.reason, "Talos v1.11.3 -> v1.12.11: the upgrade step (config unchanged)");

  std::string desired = Edit(running, "machine.files", "[{content: x, path: /var/x, op: create}]");
  auto with_config = MustDecide("v1.12.10", running, "v1.12.11", desired);
  EXPECT_EQ(with_config.mode, ApplyMode::kRelease);
  EXPECT_THAT(with_config.reboot_fields, IsEmpty());
  EXPECT_THAT(with_config.diff.Lines(), ElementsAre("v1alpha1: machine.files added"));
  EXPECT_EQ(with_config.reason,
            "Talos v1.12.10 -> v1.12.11: the upgrade step also carries 1 config change");

  EXPECT_EQ(MustDecide("v1.14.0-beta.1", running, "v1.14.0-rc.1", running).mode,
            ApplyMode::kRelease);
}

TEST(ApplyModeTest, SameVersionSpelledDifferentlyIsNotRelease) {
  // "1.12.11" and "v1.12.11" (and build metadata) name the same release: no change.
  std::string config = BaseWorker("v1.12.11");
  EXPECT_EQ(MustDecide("1.12.11", config, "v1.12.11", config).mode, ApplyMode::kNoChange);
  EXPECT_EQ(MustDecide("v1.12.11+dirty", config, "v1.12.11", config).mode, ApplyMode::kNoChange);
}

TEST(ApplyModeTest, ReorderedKeysAndFormattingAreNoChange) {
  // The same config with its keys and documents reordered, restyled and commented is no-change.
  std::string running = Golden("v1.12/overrides-controlplane.yaml");
  auto docs = ParseYamlDocuments(running, "golden");
  ASSERT_TRUE(docs.has_value());
  std::reverse(docs->begin(), docs->end());
  for (auto& d : *docs) {
    std::reverse(d.entries.begin(), d.entries.end());
  }
  std::string desired = "# rendered by ironboot\n" + EmitYaml(*docs);
  auto d = MustDecide("v1.12.11", running, "v1.12.11", desired);
  EXPECT_EQ(d.mode, ApplyMode::kNoChange);
  EXPECT_EQ(d.reason, "config and Talos v1.12.11 unchanged");
  EXPECT_EQ(ApplyModeName(d.mode), "no-change");
}

TEST(ApplyModeTest, ModeNamesAreThePlanWords) {
  // The printed names are the words `plan` and the issue use.
  EXPECT_EQ(ApplyModeName(ApplyMode::kNoChange), "no-change");
  EXPECT_EQ(ApplyModeName(ApplyMode::kApplyNow), "apply-now");
  EXPECT_EQ(ApplyModeName(ApplyMode::kNeedsReboot), "needs-reboot");
  EXPECT_EQ(ApplyModeName(ApplyMode::kRelease), "release");
}

TEST(ApplyModeTest, RuleFollowsTheVersionWhereTalosChangedIt) {
  // CanApplyImmediate from v1.10.0 through v1.14.0-alpha.1; every change live from
  // v1.14.0-alpha.2 (commit 995bc30d5) on, and assumed for later minors.
  auto rule = [](const char* v) {
    auto r = LiveApplyRuleFor(v);
    EXPECT_TRUE(r.has_value()) << v << ": " << r.error().message;
    return r.value_or(LiveApplyRule::kEverything);
  };
  EXPECT_EQ(rule("v1.10.0"), LiveApplyRule::kCanApplyImmediate);
  EXPECT_EQ(rule("v1.11.3"), LiveApplyRule::kCanApplyImmediate);
  EXPECT_EQ(rule("1.12"), LiveApplyRule::kCanApplyImmediate);
  EXPECT_EQ(rule("v1.13.9"), LiveApplyRule::kCanApplyImmediate);
  EXPECT_EQ(rule("v1.14.0-alpha.1"), LiveApplyRule::kCanApplyImmediate);
  EXPECT_EQ(rule("v1.14.0-alpha.2"), LiveApplyRule::kEverything);
  EXPECT_EQ(rule("v1.14.0-rc.1"), LiveApplyRule::kEverything);
  EXPECT_EQ(rule("v1.14.2"), LiveApplyRule::kEverything);
  EXPECT_EQ(rule("v1.15.0"), LiveApplyRule::kEverything);
}

TEST(ApplyModeTest, UnknownVersionsAreErrors) {
  // Text that is not a version, Talos before v1.10 and another major fail with a message that
  // names the version and what was expected.
  for (const char* bad : {"", "latest", "v1", "v1.x.3", "v1.11.3.4", "v1.11.-3", "v1.11.3-"}) {
    auto r = LiveApplyRuleFor(bad, "running Talos version");
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(r.error().message, "running Talos version \"" + std::string(bad) +
                                     "\" is not a version (want vMAJOR.MINOR.PATCH, e.g. "
                                     "v1.11.3)");
  }
  for (const char* old : {"v1.9.5", "v0.14.0", "v2.0.0"}) {
    auto r = LiveApplyRuleFor(old);
    ASSERT_FALSE(r.has_value()) << old;
    EXPECT_THAT(r.error().message, HasSubstr("Talos v1.10 and later only"));
  }
}

TEST(ApplyModeTest, ErrorsNameRunningOrDesired) {
  // Each bad input fails and says which side it is: the version, the YAML (with its line), or a
  // desired config without a v1alpha1 document.
  std::string good = BaseWorker("v1.12.11");
  auto bad_running_version = DecideApplyMode({"foo", good}, {"v1.12.11", good});
  ASSERT_FALSE(bad_running_version.has_value());
  EXPECT_THAT(bad_running_version.error().message, StartsWith("running Talos version \"foo\""));

  auto bad_desired_version2 = DecideApplyMode({"v1.12.11", good}, {"1.12.x", good});
  ASSERT_FALSE(bad_desired_version2.has_value());
  EXPECT_THAT(bad_desired_version2.error().message, StartsWith("desired Talos version \"1.12.x\""));

  auto bad_running_yaml = DecideApplyMode({"v1.12.11", "machine: {type: [\n"}, {"v1.12.11", good});
  ASSERT_FALSE(bad_running_yaml.has_value());
  EXPECT_EQ(bad_running_yaml.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(bad_running_yaml.error().message, StartsWith("running config:"));
  EXPECT_THAT(bad_running_yaml.error().message, HasSubstr("invalid YAML"));

  auto bad_desired_yaml = DecideApplyMode({"v1.12.11", good}, {"v1.12.11", good + "\tbad: tab\n"});
  ASSERT_FALSE(bad_desired_yaml.has_value());
  EXPECT_THAT(bad_desired_yaml.error().message, StartsWith("desired config:"));

  auto no_v1alpha1 =
      DecideApplyMode({"v1.12.11", good},
                      {"v1.12.11", "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n"});
  ASSERT_FALSE(no_v1alpha1.has_value());
  EXPECT_EQ(no_v1alpha1.error().message,
            "desired config has no v1alpha1 document (version: v1alpha1, machine, cluster); "
            "Talos refuses to apply a config without one");

  auto too_old = DecideApplyMode({"v1.9.5", good}, {"v1.9.5", Edit(good, "debug", "true")});
  ASSERT_FALSE(too_old.has_value());
  EXPECT_THAT(too_old.error().message, StartsWith("running Talos version \"v1.9.5\": ironboot"));
}

}  // namespace
}  // namespace ironboot::talos
