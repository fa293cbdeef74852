// Tests of the semantic machine-config comparison: Talos's golden configs equal
// themselves whatever the key order, comments or formatting; changed, added and
// removed fields and list items are reported at their path; documents match by
// kind and name, not position; parse errors name the config and the line.

#include "talos/config_diff.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string>

#include "tests/testutil/testutil.h"

namespace ironboot::talos {

// Readable gtest output for FieldChange (found by ADL, so outside the anonymous namespace).
inline void PrintTo(const FieldChange& c, std::ostream* os) {
  *os << c.path << " " << ChangeKindName(c.kind);
}

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Golden(const std::string& rel) {
  return testutil::ReadFile(std::string(IRONBOOT_SHARED_DIR) + "/talos/testdata/stability/" + rel);
}

ConfigDiff MustDiff(const std::string& running, const std::string& desired) {
  auto diff = DiffConfigs(running, desired);
  EXPECT_TRUE(diff.has_value()) << diff.error().message;
  return diff ? *diff : ConfigDiff{};
}

void ReverseKeys(Value& v) {
  std::reverse(v.entries.begin(), v.entries.end());
  for (auto& e : v.entries) {
    ReverseKeys(e.value);
  }
  for (auto& item : v.items) {
    ReverseKeys(item);
  }
}

TEST(ConfigDiffTest, GoldenConfigsEqualThemselves) {
  // Every golden config (one and several documents) has no difference with itself.
  for (const char* rel : {"v1.11/base-controlplane.yaml", "v1.11/overrides-worker.yaml",
                          "v1.12/base-worker.yaml", "v1.12/overrides-controlplane.yaml"}) {
    std::string config = Golden(rel);
    EXPECT_TRUE(MustDiff(config, config).Empty()) << rel;
  }
}

TEST(ConfigDiffTest, ReorderedKeysAndDocumentsAreNoChange) {
  // Every map's keys reversed, and the documents in the opposite order, compare equal.
  std::string config = Golden("v1.12/overrides-controlplane.yaml");
  auto docs = ParseYamlDocuments(config, "golden");
  ASSERT_TRUE(docs.has_value()) << docs.error().message;
  for (auto& d : *docs) {
    ReverseKeys(d);
  }
  std::reverse(docs->begin(), docs->end());
  std::string reordered = EmitYaml(*docs);
  ASSERT_NE(reordered, config);
  EXPECT_TRUE(MustDiff(config, reordered).Empty());
}

TEST(ConfigDiffTest, CommentsQuotingAndLayoutAreNoChange) {
  // Comments, flow vs block style, quoting, indentation and a leading "---" change nothing.
  std::string block = R"(version: v1alpha1
machine:
  type: worker
  certSANs:
    - 10.0.0.1
    - node1
  kubelet:
    image: ghcr.io/siderolabs/kubelet:v1.34.1
  features:
    kubePrism:
      enabled: true
      port: 7445
cluster:
  clusterName: demo
)";
  std::string restyled = R"(---
# rendered by hand
cluster: {clusterName: "demo"}   # trailing comment
machine:
      features: {kubePrism: {port: 7445, enabled: true}}
      kubelet: {image: 'ghcr.io/siderolabs/kubelet:v1.34.1'}
      certSANs: ["10.0.0.1", node1]
      type: "worker"
version: 'v1alpha1'
)";
  EXPECT_TRUE(MustDiff(block, restyled).Empty());
}

TEST(ConfigDiffTest, ReportsChangedAddedAndRemovedFieldsAtTheirPath) {
  // A changed scalar, an added key, a removed key and list items appended or dropped
  // each show as one change at the deepest differing path.
  std::string running = R"(version: v1alpha1
machine:
  type: worker
  certSANs: [a, b]
  kubelet:
    image: kubelet:v1.34.1
    extraArgs: {rotate-server-certificates: "true"}
  network:
    interfaces:
      - interface: eth0
        addresses: [10.0.0.2/24]
)";
  std::string desired = R"(version: v1alpha1
machine:
  type: worker
  certSANs: [a, b, c]
  kubelet:
    image: kubelet:v1.35.0
  install:
    disk: /dev/sda
  network:
    interfaces:
      - interface: eth0
        addresses: []
)";
  auto diff = MustDiff(running, desired);
  ASSERT_EQ(diff.documents.size(), 1u);
  EXPECT_EQ(diff.documents[0].key.String(), "v1alpha1");
  EXPECT_EQ(diff.documents[0].kind, ChangeKind::kChanged);
  EXPECT_THAT(
      diff.documents[0].fields,
      ElementsAre(FieldChange{"machine.certSANs[2]", ChangeKind::kAdded},
                  FieldChange{"machine.kubelet.image", ChangeKind::kChanged},
                  FieldChange{"machine.kubelet.extraArgs", ChangeKind::kRemoved},
                  FieldChange{"machine.install", ChangeKind::kAdded},
                  FieldChange{"machine.network.interfaces[0].addresses[0]", ChangeKind::kRemoved}));
  EXPECT_THAT(
      diff.Lines(),
      ElementsAre("v1alpha1: machine.certSANs[2] added", "v1alpha1: machine.kubelet.image changed",
                  "v1alpha1: machine.kubelet.extraArgs removed", "v1alpha1: machine.install added",
                  "v1alpha1: machine.network.interfaces[0].addresses[0] "
                  "removed"));
}

TEST(ConfigDiffTest, QuotesKeysThatAreNotPlainNames) {
  // Keys with dots (sysctls) or spaces are quoted in the path, so a path reads unambiguously.
  std::string running = "version: v1alpha1\nmachine:\n  sysctls:\n    net.ipv4.ip_forward: \"0\"\n";
  std::string desired =
      "version: v1alpha1\nmachine:\n  sysctls:\n    net.ipv4.ip_forward: \"1\"\n"
      "  nodeLabels:\n    example.com/role: storage\n    \"a b\": c\n";
  auto diff = MustDiff(running, desired);
  ASSERT_EQ(diff.documents.size(), 1u);
  EXPECT_THAT(
      diff.documents[0].fields,
      ElementsAre(FieldChange{"machine.sysctls[\"net.ipv4.ip_forward\"]", ChangeKind::kChanged},
                  FieldChange{"machine.nodeLabels", ChangeKind::kAdded}));
  auto labels =
      DiffDocument(*ParseYamlDocuments("l: {}", "t")->data(),
                   *ParseYamlDocuments("l: {example.com/role: x, \"a b\": y}", "t")->data());
  EXPECT_THAT(labels, ElementsAre(FieldChange{"l[\"example.com/role\"]", ChangeKind::kAdded},
                                  FieldChange{"l[\"a b\"]", ChangeKind::kAdded}));
}

TEST(ConfigDiffTest, ScalarsCompareByTypeAndNumbersByValue) {
  // 0x1D1D equals 7453 (numbers by value); "1" differs from 1 and null from an absent key
  // (stricter than Talos's Go decoding: the comparison errs towards reporting a change).
  auto diff = [](const std::string& a, const std::string& b) {
    return DiffDocument(*ParseYamlDocuments(a, "a")->data(), *ParseYamlDocuments(b, "b")->data());
  };
  EXPECT_TRUE(diff("port: 7453", "port: 0x1D1D").empty());
  EXPECT_TRUE(diff("on: true", "on: True").empty());
  EXPECT_THAT(diff("v: 1", "v: \"1\""), ElementsAre(FieldChange{"v", ChangeKind::kChanged}));
  EXPECT_THAT(diff("a: 1\nv: null", "a: 1"), ElementsAre(FieldChange{"v", ChangeKind::kRemoved}));
  EXPECT_THAT(diff("v: [1, 2]", "v: {a: 1}"), ElementsAre(FieldChange{"v", ChangeKind::kChanged}));
}

TEST(ConfigDiffTest, MatchesDocumentsByKindAndName) {
  // Documents pair by apiVersion/kind/name wherever they sit: a changed named document, an
  // added one and a removed one are reported as such, after the v1alpha1 document.
  std::string running = R"(apiVersion: v1alpha1
kind: RegistryMirrorConfig
name: ghcr.io
endpoints:
  - url: https://ghcr.io.my-mirror.com
---
version: v1alpha1
machine: {type: worker}
---
apiVersion: v1alpha1
kind: HostnameConfig
auto: stable
)";
  std::string desired = R"(version: v1alpha1
machine: {type: worker}
---
apiVersion: v1alpha1
kind: RegistryMirrorConfig
name: ghcr.io
endpoints:
  - url: https://other-mirror.example
---
apiVersion: v1alpha1
kind: RegistryMirrorConfig
name: docker.io
endpoints:
  - url: https://docker-mirror.example
)";
  auto diff = MustDiff(running, desired);
  EXPECT_THAT(diff.Lines(),
              ElementsAre("RegistryMirrorConfig/ghcr.io: endpoints[0].url changed",
                          "RegistryMirrorConfig/docker.io added", "HostnameConfig removed"));
  EXPECT_EQ(diff.documents[1].kind, ChangeKind::kAdded);
  EXPECT_TRUE(diff.documents[1].fields.empty());
}

TEST(ConfigDiffTest, DocumentKeyNamesTheApiVersionOnlyWhenNotV1Alpha1) {
  // The printed key is "v1alpha1", "Kind", "Kind/name", or "apiVersion/Kind[/name]" for
  // another apiVersion; two documents differing only in apiVersion are different documents.
  EXPECT_EQ((DocumentKey{}).String(), "v1alpha1");
  EXPECT_EQ((DocumentKey{"v1alpha1", "HostnameConfig", ""}).String(), "HostnameConfig");
  EXPECT_EQ((DocumentKey{"v1alpha1", "LinkConfig", "eth0"}).String(), "LinkConfig/eth0");
  EXPECT_EQ((DocumentKey{"v1alpha2", "Foo", "x"}).String(), "v1alpha2/Foo/x");
  auto diff = MustDiff("apiVersion: v1alpha1\nkind: Foo\na: 1\n",
                       "apiVersion: v1alpha2\nkind: Foo\na: 1\n");
  EXPECT_THAT(diff.Lines(), ElementsAre("v1alpha2/Foo added", "Foo removed"));
}

TEST(ConfigDiffTest, ParseErrorsNameTheConfigAndLine) {
  // A YAML error says which config ("running config" / "desired config") and where.
  std::string good = "version: v1alpha1\n";
  auto bad_desired = DiffConfigs(good, "version: v1alpha1\nmachine: [a\n");
  ASSERT_FALSE(bad_desired.has_value());
  EXPECT_EQ(bad_desired.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(bad_desired.error().message, StartsWith("desired config:"));
  EXPECT_THAT(bad_desired.error().message, HasSubstr("invalid YAML"));

  auto bad_running = DiffConfigs("machine:\n  type: worker\n bad: indent\n", good);
  ASSERT_FALSE(bad_running.has_value());
  EXPECT_THAT(bad_running.error().message, StartsWith("running config:3:"));
}

TEST(ConfigDiffTest, RefusesDocumentsTalosRefuses) {
  // A document that is not a map, one with kind but no apiVersion, and a duplicate
  // document each fail, naming the config, line and document.
  auto not_map = ParseMachineConfig("version: v1alpha1\n---\n- a\n- b\n", "desired config");
  ASSERT_FALSE(not_map.has_value());
  EXPECT_EQ(not_map.error().message,
            "desired config:3: document 2 is not a map (want a machine config document)");

  auto half = ParseMachineConfig("kind: HostnameConfig\nauto: stable\n", "running config");
  ASSERT_FALSE(half.has_value());
  EXPECT_EQ(half.error().message,
            "running config:1: document 1 has kind but no apiVersion (want both, or neither for "
            "the v1alpha1 document)");

  auto dup = ParseMachineConfig(
      "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\n---\n"
      "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\nmtu: 9000\n",
      "desired config");
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().message,
            "desired config:5: document 2: duplicate document LinkConfig/eth0 (Talos refuses it "
            "too)");

  auto two_v1alpha1 = ParseMachineConfig("version: v1alpha1\n---\nversion: v1alpha1\n", "c");
  ASSERT_FALSE(two_v1alpha1.has_value());
  EXPECT_THAT(two_v1alpha1.error().message, HasSubstr("duplicate document v1alpha1"));
}

TEST(ConfigDiffTest, EmptyConfigsHaveNoDocuments) {
  // An empty text or one with only comments parses to no documents, and everything the
  // other side has is then added.
  auto empty = ParseMachineConfig("# nothing\n", "running config");
  ASSERT_TRUE(empty.has_value()) << empty.error().message;
  EXPECT_TRUE(empty->documents.empty());
  EXPECT_EQ(empty->V1Alpha1(), nullptr);
  EXPECT_THAT(MustDiff("", "version: v1alpha1\n").Lines(), ElementsAre("v1alpha1 added"));
}

}  // namespace
}  // namespace ironboot::talos
