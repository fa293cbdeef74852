// Unit tests of Talos config patching: each strategic-merge rule, each RFC 6902
// op, the errors a user can hit, and the YAML we write.

#include "talos/config_patch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "talos/yaml_value.h"
#include "tests/talos/patch_compare.h"

namespace ironboot::talos {
namespace {

using testing::Doc;
using testing::Get;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Scalar;
using testing::Size;

// Applies inline patches (named p1, p2, ...) and returns the first output document.
std::string Apply(const std::string& config, const std::vector<std::string>& patches) {
  std::vector<Patch> loaded;
  for (size_t i = 0; i < patches.size(); ++i) {
    loaded.push_back(Patch{"p" + std::to_string(i + 1) + ".yaml", patches[i]});
  }
  auto out = ApplyPatches(config, loaded);
  EXPECT_TRUE(out.has_value()) << out.error().message;
  return out.value_or("");
}

std::string ApplyError(const std::string& config, const std::vector<std::string>& patches) {
  std::vector<Patch> loaded;
  for (size_t i = 0; i < patches.size(); ++i) {
    loaded.push_back(Patch{"p" + std::to_string(i + 1) + ".yaml", patches[i]});
  }
  auto out = ApplyPatches(config, loaded);
  EXPECT_FALSE(out.has_value()) << "unexpected success:\n" << out.value_or("");
  return out ? "" : out.error().message;
}

const char* const kBase = R"(version: v1alpha1
machine:
  type: worker
  token: abc.def
  certSANs: [a.example]
  nodeLabels:
    zone: a
  network:
    hostname: node1
    interfaces:
      - interface: eth0
        dhcp: true
        addresses: [10.0.0.2/24]
        vlans:
          - vlanId: 10
            addresses: [10.10.0.2/24]
      - deviceSelector:
          hardwareAddr: "52:54:00:*"
        mtu: 1500
  install:
    disk: /dev/sda
    wipe: true
cluster:
  network:
    podSubnets: [10.244.0.0/16]
    serviceSubnets: [10.96.0.0/12]
  apiServer:
    admissionControl:
      - name: PodSecurity
        configuration:
          defaults:
            enforce: baseline
          exemptions:
            namespaces: [kube-system]
    auditPolicy:
      apiVersion: audit.k8s.io/v1
      kind: Policy
      rules:
        - level: Metadata
---
apiVersion: v1alpha1
kind: ExtensionServiceConfig
name: foo
configFiles:
  - content: one
    mountPath: /etc/one
---
apiVersion: v1alpha1
kind: ExtensionServiceConfig
name: bar
environment: [A=1]
)";

// A patch document matches its config document by apiVersion/kind/name; others are appended.
TEST(StrategicMerge, MatchesDocumentsByKindAndName) {
  std::string out = Apply(kBase, {R"(apiVersion: v1alpha1
kind: ExtensionServiceConfig
name: bar
environment: [B=2]
---
apiVersion: v1alpha1
kind: ExtensionServiceConfig
name: baz
environment: [C=3]
---
machine:
  network:
    hostname: node2
)"});
  EXPECT_EQ(Scalar(Doc(out, 0), "machine.network.hostname"), "node2");
  EXPECT_EQ(Size(Doc(out, 1), "environment"), 0u) << "foo has no environment";
  EXPECT_EQ(Scalar(Doc(out, 2), "name"), "bar");
  EXPECT_EQ(Scalar(Doc(out, 2), "environment.1"), "B=2");
  EXPECT_EQ(Scalar(Doc(out, 3), "name"), "baz");
  EXPECT_EQ(Scalar(Doc(out, 3), "environment.0"), "C=3");
}

// Scalars overwrite, except zero values in the patch; false always applies.
TEST(StrategicMerge, ScalarsOverwriteButZeroValuesAreSkipped) {
  std::string out = Apply(kBase, {R"(machine:
  type: ""
  token: new.token
  network:
    hostname: null
    interfaces:
      - interface: eth0
        dhcp: false
        mtu: 0
  install:
    wipe: false
    disk: ~
)"});
  Value doc = Doc(out);
  EXPECT_EQ(Scalar(doc, "machine.type"), "worker");
  EXPECT_EQ(Scalar(doc, "machine.token"), "new.token");
  EXPECT_EQ(Scalar(doc, "machine.network.hostname"), "node1");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.dhcp"), "false");
  EXPECT_EQ(Scalar(doc, "machine.install.wipe"), "false");
  EXPECT_EQ(Scalar(doc, "machine.install.disk"), "/dev/sda");
  // A new key is added even with a zero value (as a map[string]string entry is).
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.mtu"), "0");
}

// Maps merge key by key, recursively; new keys are added at the end.
TEST(StrategicMerge, MapsMergeRecursively) {
  std::string out = Apply(kBase, {"machine:\n  nodeLabels:\n    rack: r1\n    zone: b\n"});
  Value doc = Doc(out);
  EXPECT_EQ(Scalar(doc, "machine.nodeLabels.zone"), "b");
  EXPECT_EQ(Scalar(doc, "machine.nodeLabels.rack"), "r1");
  EXPECT_EQ(Scalar(doc, "machine.type"), "worker");
  EXPECT_LT(out.find("zone: b"), out.find("rack: r1"));
}

// Lists concatenate by default.
TEST(StrategicMerge, ListsConcatenate) {
  std::string out = Apply(kBase, {"machine:\n  certSANs: [b.example]\n  network:\n    interfaces:\n"
                                  "      - interface: eth0\n        addresses: [10.0.0.3/24]\n"});
  Value doc = Doc(out);
  EXPECT_EQ(Size(doc, "machine.certSANs"), 2u);
  EXPECT_EQ(Scalar(doc, "machine.certSANs.1"), "b.example");
  EXPECT_EQ(Size(doc, "machine.network.interfaces.0.addresses"), 2u);
}

// Interfaces merge by `interface` or an equal deviceSelector; others are appended.
TEST(StrategicMerge, InterfacesMergeByNameOrDeviceSelector) {
  std::string out = Apply(kBase, {R"(machine:
  network:
    interfaces:
      - deviceSelector:
          hardwareAddr: "52:54:00:*"
        mtu: 9000
      - interface: eth0
        dhcp: false
      - interface: eth1
        dhcp: true
      - deviceSelector:
          driver: virtio
        dhcp: true
)"});
  Value doc = Doc(out);
  ASSERT_EQ(Size(doc, "machine.network.interfaces"), 4u);
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.dhcp"), "false");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.1.mtu"), "9000");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.2.interface"), "eth1");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.3.deviceSelector.driver"), "virtio");
}

// VLANs merge by vlanId (their addresses concatenate); new VLANs are appended.
TEST(StrategicMerge, VlansMergeByVlanId) {
  std::string out = Apply(kBase, {R"(machine:
  network:
    interfaces:
      - interface: eth0
        vlans:
          - vlanId: 10
            addresses: [10.10.0.3/24]
            mtu: 1400
          - vlanId: 20
            addresses: [10.20.0.2/24]
)"});
  Value doc = Doc(out);
  ASSERT_EQ(Size(doc, "machine.network.interfaces.0.vlans"), 2u);
  EXPECT_EQ(Size(doc, "machine.network.interfaces.0.vlans.0.addresses"), 2u);
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.vlans.0.mtu"), "1400");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.vlans.1.vlanId"), "20");
}

// admissionControl merges by name and a matched plugin's configuration is replaced whole.
TEST(StrategicMerge, AdmissionControlMergesByNameReplacingConfiguration) {
  std::string out = Apply(kBase, {R"(cluster:
  apiServer:
    admissionControl:
      - name: PodSecurity
        configuration:
          defaults:
            enforce: restricted
      - name: EventRateLimit
        configuration:
          limits: []
)"});
  Value doc = Doc(out);
  ASSERT_EQ(Size(doc, "cluster.apiServer.admissionControl"), 2u);
  EXPECT_EQ(Scalar(doc, "cluster.apiServer.admissionControl.0.configuration.defaults.enforce"),
            "restricted");
  EXPECT_EQ(Get(doc, "cluster.apiServer.admissionControl.0.configuration.exemptions"), nullptr);
  EXPECT_EQ(Scalar(doc, "cluster.apiServer.admissionControl.1.name"), "EventRateLimit");
}

// ExtensionServiceConfig configFiles merge by mountPath.
TEST(StrategicMerge, ConfigFilesMergeByMountPath) {
  std::string out = Apply(kBase, {R"(apiVersion: v1alpha1
kind: ExtensionServiceConfig
name: foo
configFiles:
  - content: uno
    mountPath: /etc/one
  - content: two
    mountPath: /etc/two
)"});
  Value doc = Doc(out, 1);
  ASSERT_EQ(Size(doc, "configFiles"), 2u);
  EXPECT_EQ(Scalar(doc, "configFiles.0.content"), "uno");
  EXPECT_EQ(Scalar(doc, "configFiles.1.mountPath"), "/etc/two");
}

// podSubnets, serviceSubnets and auditPolicy are replaced, not merged.
TEST(StrategicMerge, SubnetsAndAuditPolicyAreReplacedWhole) {
  std::string out = Apply(kBase, {R"(cluster:
  network:
    podSubnets: [10.100.0.0/16]
    serviceSubnets: [10.200.0.0/16, fd00::/108]
  apiServer:
    auditPolicy:
      apiVersion: audit.k8s.io/v1
      kind: Policy
      rules:
        - level: None
)"});
  Value doc = Doc(out);
  ASSERT_EQ(Size(doc, "cluster.network.podSubnets"), 1u);
  EXPECT_EQ(Scalar(doc, "cluster.network.podSubnets.0"), "10.100.0.0/16");
  ASSERT_EQ(Size(doc, "cluster.network.serviceSubnets"), 2u);
  EXPECT_EQ(Scalar(doc, "cluster.network.serviceSubnets.1"), "fd00::/108");
  ASSERT_EQ(Size(doc, "cluster.apiServer.auditPolicy.rules"), 1u);
  EXPECT_EQ(Scalar(doc, "cluster.apiServer.auditPolicy.rules.0.level"), "None");
}

// `$patch: delete` on a map key removes it (and an absent key is no error).
TEST(StrategicMerge, PatchDeleteRemovesMapKey) {
  std::string out = Apply(kBase, {R"(machine:
  nodeLabels:
    zone:
      $patch: delete
  install:
    $patch: delete
  network:
    nameservers:
      $patch: delete
)"});
  Value doc = Doc(out);
  EXPECT_EQ(Get(doc, "machine.nodeLabels.zone"), nullptr);
  EXPECT_EQ(Get(doc, "machine.install"), nullptr);
  EXPECT_EQ(Scalar(doc, "machine.network.hostname"), "node1");
  EXPECT_THAT(out, Not(HasSubstr("$patch")));
}

// `$patch: delete` in a list item removes every item with the same key/value, then the
// rest of the patch merges.
TEST(StrategicMerge, PatchDeleteRemovesMatchingListItems) {
  std::string config =
      "machine:\n  network:\n    interfaces:\n      - interface: eth0\n"
      "      - interface: eth1\n      - interface: eth0\n        mtu: 9000\n";
  std::string out = Apply(config, {R"(machine:
  network:
    interfaces:
      - interface: eth0
        $patch: delete
      - interface: eth2
        dhcp: true
)"});
  Value doc = Doc(out);
  ASSERT_EQ(Size(doc, "machine.network.interfaces"), 2u);
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.interface"), "eth1");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.1.interface"), "eth2");
}

// `$patch: delete` on a whole document deletes it; on the v1alpha1 document it is an error.
TEST(StrategicMerge, PatchDeleteWholeDocument) {
  std::string out = Apply(
      kBase, {"apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: foo\n$patch: delete\n"});
  EXPECT_THAT(out, Not(HasSubstr("name: foo")));
  EXPECT_THAT(out, HasSubstr("name: bar"));
  EXPECT_EQ(Scalar(Doc(out, 0), "machine.type"), "worker");

  std::string err = ApplyError(kBase, {"version: v1alpha1\n$patch: delete\n"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:2"));
  EXPECT_THAT(err, HasSubstr("can't delete the root of the legacy (v1alpha1) document"));
}

// Deleting under a path that does not exist fails like Talos ("lookup failed"), naming the patch.
TEST(StrategicMerge, PatchDeleteOfMissingPathFails) {
  std::string err = ApplyError("version: v1alpha1\nmachine: {}\n",
                               {"machine:\n  network:\n    hostname:\n      $patch: delete\n"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:4"));
  EXPECT_THAT(err, HasSubstr("patch delete: path 'machine.network.hostname' in document "
                             "'/v1alpha1'"));
  EXPECT_THAT(err, HasSubstr("lookup failed"));

  err = ApplyError(kBase, {"machine:\n  network:\n    interfaces:\n      - interface: eth9\n"
                           "        $patch: delete\n"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:5"));
  EXPECT_THAT(err, HasSubstr("no item with interface: eth9"));
}

// Deletes Talos cannot express are refused with the path: inside a list item, or unknown $patch.
TEST(StrategicMerge, UnsupportedPatchDirectivesFail) {
  std::string err = ApplyError(kBase, {R"(machine:
  network:
    interfaces:
      - interface: eth0
        vlans:
          - vlanId: 10
            $patch: delete
)"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:7"));
  EXPECT_THAT(err, HasSubstr("machine.network.interfaces.[0].vlans.[0]"));

  err = ApplyError(kBase, {"machine:\n  network:\n    $patch: replace\n"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:3"));
  EXPECT_THAT(err, HasSubstr("unsupported \"$patch: replace\""));
}

// Documents that cannot be identified, or appear twice, are refused with a clear message.
TEST(StrategicMerge, BadDocumentIdentityFails) {
  std::string err = ApplyError(kBase, {"machine: {}\n---\nkind: HostnameConfig\nhostname: x\n"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:3: a document needs both apiVersion and kind"));

  err = ApplyError("version: v1alpha1\n---\nversion: v1alpha1\n", {"machine: {}\n"});
  EXPECT_THAT(err, HasSubstr("document '/v1alpha1' appears twice"));
}

// Merging a list into a scalar (a typo'd patch) fails naming the patch, line and path.
TEST(StrategicMerge, TypeMismatchFails) {
  std::string err = ApplyError(kBase, {"machine:\n  network:\n    hostname: [a, b]\n"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:3"));
  EXPECT_THAT(err, HasSubstr("machine.network.hostname: cannot merge a list into a scalar"));
}

// ---- RFC 6902 ----

const char* const kSingle = R"(version: v1alpha1
machine:
  type: worker
  certSANs: [a, b]
  nodeLabels:
    a/b: x
    m~n: y
)";

// add: a new map key, an array index (insert) and "-" (append); replaces an existing key.
TEST(JsonPatch, Add) {
  std::string out = Apply(kSingle, {R"([
    {"op": "add", "path": "/machine/certSANs/1", "value": "inserted"},
    {"op": "add", "path": "/machine/certSANs/-", "value": "last"},
    {"op": "add", "path": "/machine/network", "value": {"hostname": "n1"}},
    {"op": "add", "path": "/machine/type", "value": "controlplane"}
  ])"});
  Value doc = Doc(out);
  ASSERT_EQ(Size(doc, "machine.certSANs"), 4u);
  EXPECT_EQ(Scalar(doc, "machine.certSANs.1"), "inserted");
  EXPECT_EQ(Scalar(doc, "machine.certSANs.3"), "last");
  EXPECT_EQ(Scalar(doc, "machine.network.hostname"), "n1");
  EXPECT_EQ(Scalar(doc, "machine.type"), "controlplane");
  // key order kept: type stays first, network is appended at the end
  EXPECT_LT(out.find("type: controlplane"), out.find("certSANs"));
  EXPECT_LT(out.find("nodeLabels"), out.find("network"));
}

// remove and replace, with ~1 (/) and ~0 (~) escapes in pointers; YAML-form patch.
TEST(JsonPatch, RemoveAndReplaceWithEscapes) {
  std::string out = Apply(kSingle, {R"(- op: remove
  path: /machine/nodeLabels/a~1b
- op: replace
  path: /machine/nodeLabels/m~0n
  value: z
- op: remove
  path: /machine/certSANs/0
)"});
  Value doc = Doc(out);
  EXPECT_EQ(Get(doc, "machine.nodeLabels.a/b"), nullptr);
  EXPECT_EQ(Scalar(doc, "machine.nodeLabels.m~n"), "z");
  ASSERT_EQ(Size(doc, "machine.certSANs"), 1u);
  EXPECT_EQ(Scalar(doc, "machine.certSANs.0"), "b");
}

// move and copy.
TEST(JsonPatch, MoveAndCopy) {
  std::string out = Apply(kSingle, {R"([
    {"op": "copy", "from": "/machine/type", "path": "/machine/role"},
    {"op": "move", "from": "/machine/certSANs", "path": "/cluster"}
  ])"});
  Value doc = Doc(out);
  EXPECT_EQ(Scalar(doc, "machine.role"), "worker");
  EXPECT_EQ(Scalar(doc, "machine.type"), "worker");
  EXPECT_EQ(Get(doc, "machine.certSANs"), nullptr);
  EXPECT_EQ(Scalar(doc, "cluster.1"), "b");
}

// test passes on an equal value (numbers by value, maps in any order) and fails otherwise.
TEST(JsonPatch, Test) {
  std::string out = Apply(kSingle, {R"([
    {"op": "test", "path": "/machine/type", "value": "worker"},
    {"op": "test", "path": "/machine/nodeLabels", "value": {"m~n": "y", "a/b": "x"}},
    {"op": "replace", "path": "/machine/type", "value": "controlplane"}
  ])"});
  EXPECT_EQ(Scalar(Doc(out), "machine.type"), "controlplane");

  std::string err =
      ApplyError(kSingle, {"- op: test\n  path: /machine/type\n  value: controlplane\n"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:1: operation 1 (test /machine/type): test failed"));
  EXPECT_THAT(err, Not(HasSubstr("worker")));  // values are never echoed (configs hold secrets)
}

// A pointer to something that does not exist fails, naming the patch, operation and pointer.
TEST(JsonPatch, MissingPathFails) {
  std::string err =
      ApplyError(kSingle, {"- op: replace\n  path: /machine/network/hostname\n  value: x\n"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:1: operation 1 (replace /machine/network/hostname)"));
  EXPECT_THAT(err, HasSubstr("/machine/network does not exist"));

  err = ApplyError(kSingle, {R"([{"op": "add", "path": "/machine/certSANs/5", "value": "x"}])"});
  EXPECT_THAT(err, HasSubstr("index 5 is out of range (list has 2 items)"));

  err = ApplyError(kSingle, {R"([{"op": "remove", "path": "/machine/nope"}])"});
  EXPECT_THAT(err, HasSubstr("/machine/nope does not exist"));

  err = ApplyError(kSingle, {R"([{"op": "frob", "path": "/machine"}])"});
  EXPECT_THAT(err, HasSubstr("unknown op \"frob\""));

  err = ApplyError(kSingle, {"- op: add\n  path: /machine/x\n"});
  EXPECT_THAT(err, HasSubstr("missing \"value\""));
}

// ---- parsing and output ----

// Invalid YAML in a patch names the patch and the line.
TEST(ConfigPatch, InvalidYamlNamesPatchAndLine) {
  std::string err = ApplyError(kSingle, {"machine:\n  type: worker\n  bad: [unclosed\n"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:"));
  EXPECT_THAT(err, HasSubstr("invalid YAML"));
  std::vector<Patch> patches = {Patch{"patches/all.yaml", "a: 1\nb: 2\n  c: 3\n"}};
  auto out = ApplyPatches(kSingle, patches);
  ASSERT_FALSE(out.has_value());
  EXPECT_THAT(out.error().message, HasSubstr("patches/all.yaml:3:"));

  err = ApplyError(kSingle, {"machine:\n  type: a\n  type: b\n"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:3:3: duplicate key \"type\""));

  err = ApplyError(kSingle, {"just a string"});
  EXPECT_THAT(err, HasSubstr("p1.yaml:1: not a config patch"));
}

// Block scalars (|, |-, |+) and tricky strings survive a patch byte for byte.
TEST(ConfigPatch, MultilineAndTrickyStringsSurvive) {
  std::string config = R"(version: v1alpha1
machine:
  files:
    - content: |
        line one
          indented
        # not a comment

        after empty line
      path: /etc/a
    - content: |-
        no trailing newline
        second
      path: /etc/b
    - content: |+
        keep

      path: /etc/c
  env:
    A: "true"
    B: "123"
    C: ""
    D: "a: b"
    E: "#x"
    F: "yes"
    G: "0o755"
    H: "-"
    I: " lead"
    J: "tab\there"
    K: "10:30"
    L: "1_000"
    M: "null"
    N: "{x}"
)";
  std::string out = Apply(config, {"machine:\n  type: worker\n"});
  Value doc = Doc(out);
  EXPECT_EQ(Scalar(doc, "machine.files.0.content"),
            "line one\n  indented\n# not a comment\n\nafter empty line\n");
  EXPECT_EQ(Scalar(doc, "machine.files.1.content"), "no trailing newline\nsecond");
  EXPECT_EQ(Scalar(doc, "machine.files.2.content"), "keep\n\n");
  Value original = Doc(config);
  for (const char* key : {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N"}) {
    const Value* got = Get(doc, std::string("machine.env.") + key);
    ASSERT_NE(got, nullptr) << key;
    EXPECT_EQ(got->kind, ValueKind::kString) << key << " in\n" << out;
    EXPECT_EQ(got->scalar, Scalar(original, std::string("machine.env.") + key)) << key;
  }
  EXPECT_THAT(out, HasSubstr("content: |\n"));
  EXPECT_THAT(out, HasSubstr("content: |-\n"));
}

// Output is deterministic, re-parses to the same config, and keeps the base's key order.
TEST(ConfigPatch, OutputIsDeterministicAndKeepsKeyOrder) {
  std::vector<std::string> patches = {"cluster:\n  network:\n    podSubnets: [10.1.0.0/16]\n",
                                      "machine:\n  zzz: last\n  install:\n    image: x\n"};
  std::string a = Apply(kBase, patches);
  std::string b = Apply(kBase, patches);
  EXPECT_EQ(a, b);
  // Patching the output again with nothing gives the same bytes: the writer is a fixpoint.
  EXPECT_EQ(Apply(a, {"machine: {}\n"}), a);
  EXPECT_LT(a.find("version:"), a.find("machine:"));
  EXPECT_LT(a.find("machine:"), a.find("cluster:"));
  EXPECT_LT(a.find("    type: worker"), a.find("    token:"));
  EXPECT_LT(a.find("    install:"), a.find("    zzz: last"));
  EXPECT_EQ(a.find("---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: foo\n") !=
                std::string::npos,
            true)
      << a;
}

// A JSON patch as JSON, tab-indented and compact (not valid YAML 1.1), applies.
TEST(JsonPatch, JsonTextWithTabs) {
  std::string out =
      Apply(kSingle,
            {"[\n\t{\"op\":\"add\",\"path\":\"/machine/certSANs/-\",\"value\":\"c\"},\n"
             "\t{\"op\":\"add\",\"path\":\"/machine/kubelet\",\"value\":{\"z\":1,\"a\":true}}\n]"});
  Value doc = Doc(out);
  EXPECT_EQ(Scalar(doc, "machine.certSANs.2"), "c");
  EXPECT_EQ(Get(doc, "machine.kubelet.z")->kind, ValueKind::kInt);
  EXPECT_EQ(Get(doc, "machine.kubelet.a")->kind, ValueKind::kBool);
  EXPECT_LT(out.find("z: 1"), out.find("a: true"));  // JSON key order kept
}

// Unquoted YAML 1.1 words (yes, on) stay unquoted, so Talos reads them as it would have;
// quoted ones stay quoted.
TEST(ConfigPatch, PlainScalarsStayPlain) {
  std::string out = Apply("machine:\n  install:\n    wipe: yes\n    mode: \"on\"\n",
                          {"machine:\n  install:\n    bootloader: on\n"});
  EXPECT_THAT(out, HasSubstr("wipe: yes\n"));
  EXPECT_THAT(out, HasSubstr("mode: \"on\"\n"));
  EXPECT_THAT(out, HasSubstr("bootloader: on\n"));
}

// An empty patch (or one with only comments) changes nothing.
TEST(ConfigPatch, EmptyPatchIsNoOp) {
  std::string once = Apply(kSingle, {"machine: {}\n"});
  EXPECT_EQ(Apply(kSingle, {"", "# only a comment\n"}), once);
}

// Many machines: patching stays fast, and a big keyed list merges without quadratic work.
TEST(ConfigPatch, PerformanceIsLinear) {
  std::string cp =
      testing::ReadTestdata("configpatcher/testdata/patchdelete/controlplane_orig.yaml");
  std::vector<Patch> patches = {
      Patch{"a.yaml",
            "machine:\n  network:\n    hostname: cp1\n    interfaces:\n"
            "      - interface: eth0\n        addresses: [10.0.0.1/24]\n"},
      Patch{"b.yaml", "- op: add\n  path: /machine/install/disk\n  value: /dev/sda\n"},
      Patch{"c.yaml", "cluster:\n  apiServer:\n    auditPolicy:\n      $patch: delete\n"}};
  auto start = std::chrono::steady_clock::now();
  constexpr int kMachines = 1000;
  for (int i = 0; i < kMachines; ++i) {
    auto out = ApplyPatches(cp, patches);
    ASSERT_TRUE(out.has_value()) << out.error().message;
  }
  double per_machine_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
      kMachines;
  std::printf("patching a control-plane config with 3 patches: %.3f ms per machine\n",
              per_machine_ms);
  EXPECT_LT(per_machine_ms, 20.0);

  std::string base = "machine:\n  network:\n    interfaces:\n";
  std::string patch = base;
  constexpr int kInterfaces = 20000;
  for (int i = 0; i < kInterfaces; ++i) {
    base += "      - interface: eth" + std::to_string(i) + "\n";
    patch +=
        "      - interface: eth" + std::to_string(kInterfaces - 1 - i) + "\n        mtu: 9000\n";
  }
  start = std::chrono::steady_clock::now();
  std::string out = Apply(base, {patch});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("merging %d interfaces by name: %.3f s\n", kInterfaces, seconds);
  EXPECT_LT(seconds, 5.0);
  Value doc = Doc(out);
  EXPECT_EQ(Size(doc, "machine.network.interfaces"), static_cast<size_t>(kInterfaces));
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.mtu"), "9000");
}

}  // namespace
}  // namespace ironboot::talos
