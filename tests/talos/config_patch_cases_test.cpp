// Talos's own config-patch cases (shared/talos/testdata/CASES.md): our engine
// must produce the same configs as configpatcher/apply_test.go expects.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "talos/config_patch.h"
#include "talos/strategic_merge.h"
#include "tests/talos/patch_compare.h"

namespace ironboot::talos {
namespace {

using testing::Doc;
using ::testing::HasSubstr;
using testing::ReadTestdata;
using testing::Scalar;
using testing::SemanticallyEqual;
using testing::Size;

constexpr const char* kDir = "configpatcher/testdata/";

Result<std::string> RunCase(const std::string& base, const std::vector<std::string>& patches) {
  std::vector<Patch> loaded;
  for (const auto& p : patches) {
    loaded.push_back(Patch{p, ReadTestdata(kDir + p)});
  }
  return ApplyPatches(ReadTestdata(kDir + base), loaded);
}

// The comparison helper itself: it must see real differences and not pass on empty input.
TEST(ConfigPatchCompare, DetectsDifferences) {
  std::string expected = ReadTestdata(std::string(kDir) + "apply/expected.yaml");
  EXPECT_GT(testing::CountLeaves(Doc(expected)), 10u);
  EXPECT_TRUE(SemanticallyEqual(expected, expected));
  // Key order and Talos's zero values do not matter...
  EXPECT_TRUE(SemanticallyEqual("a: 1\nb: {c: x}\n", "b: {c: x, d: \"\", e: []}\na: 1\nf: null\n"));
  // ...but a value, a missing key, list order, an extra item or a document do.
  EXPECT_FALSE(SemanticallyEqual("a: 1\n", "a: 2\n"));
  EXPECT_FALSE(SemanticallyEqual("a: 1\nb: 2\n", "a: 1\n"));
  EXPECT_FALSE(SemanticallyEqual("a: [1, 2]\n", "a: [2, 1]\n"));
  EXPECT_FALSE(SemanticallyEqual("a: [1, 2, 3]\n", "a: [1, 2]\n"));
  EXPECT_FALSE(SemanticallyEqual("a: \"1\"\n", "a: 1\n"));
  EXPECT_FALSE(SemanticallyEqual("a: 1\n---\nb: 1\n", "a: 1\n"));
  EXPECT_FALSE(SemanticallyEqual("a: false\n", "a: true\n"));
}

// CASES.md "apply": strategic, JSON, JSON, strategic, strategic patches in order.
TEST(ConfigPatchCases, Apply) {
  auto out = RunCase("apply/config.yaml",
                     {"apply/strategic1.yaml", "apply/jsonpatch1.yaml", "apply/jsonpatch2.yaml",
                      "apply/strategic2.yaml", "apply/strategic3.yaml"});
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_TRUE(SemanticallyEqual(*out, ReadTestdata(std::string(kDir) + "apply/expected.yaml")));
  Value doc = Doc(*out);
  EXPECT_EQ(Scalar(doc, "machine.network.hostname"), "foo");
  EXPECT_EQ(Size(doc, "machine.network.interfaces"), 2u);
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.interface"), "eth0");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.dhcp"), "false");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.addresses.0"), "10.1.2.3/24");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.0.vip.ip"), "10.3.5.6");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.1.vlans.0.vlanId"), "100");
  EXPECT_EQ(Size(doc, "machine.network.interfaces.1.vlans.0.addresses"), 2u);
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.1.vlans.0.addresses.1"), "10.3.4.6");
  EXPECT_EQ(Scalar(doc, "machine.network.interfaces.1.vlans.1.vlanId"), "101");
  EXPECT_EQ(Scalar(doc, "cluster.proxy.extraArgs.foo"), "<missing>");
  EXPECT_EQ(Scalar(doc, "cluster.proxy.extraArgs.metrics-bind-address"), "$(POD_IP):10249");
}

// CASES.md "multi-document rejects JSON patch": the exact Talos error, naming the patch.
TEST(ConfigPatchCases, MultiDocumentRejectsJsonPatch) {
  auto out =
      RunCase("multidoc/config.yaml", {"multidoc/jsonpatch.yaml", "multidoc/strategic1.yaml"});
  ASSERT_FALSE(out.has_value());
  EXPECT_THAT(out.error().message,
              HasSubstr("JSON6902 patches are not supported for multi-document machine "
                        "configuration"));
  EXPECT_THAT(out.error().message, HasSubstr("multidoc/jsonpatch.yaml"));
  EXPECT_EQ(out.error().code, ErrorCode::kInvalid);
}

// CASES.md "multi-document": documents matched by kind/name, configFiles by mountPath,
// deleting an absent document is fine.
TEST(ConfigPatchCases, MultiDocument) {
  auto out =
      RunCase("multidoc/config.yaml",
              {"multidoc/strategic1.yaml", "multidoc/strategic2.yaml", "multidoc/strategic3.yaml"});
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_TRUE(SemanticallyEqual(*out, ReadTestdata(std::string(kDir) + "multidoc/expected.yaml")));
  EXPECT_EQ(Scalar(Doc(*out, 0), "machine.network.interfaces.0.dhcp"), "false");
  EXPECT_EQ(Scalar(Doc(*out, 1), "apiUrl"),
            "https://siderolink.api/join?jointoken=secret&user=bob");
  Value ext = Doc(*out, 2);
  EXPECT_EQ(Scalar(ext, "configFiles.0.content"), "hello world");
  EXPECT_EQ(Scalar(ext, "configFiles.1.mountPath"), "/etc/bar");
  EXPECT_EQ(Scalar(ext, "environment.1"), "XXX=YYY");
  EXPECT_EQ(out->find("KubeFlannelCNIConfig"), std::string::npos);
}

// CASES.md "manifest with newline": a block scalar survives, its leading empty line dropped.
TEST(ConfigPatchCases, ManifestWithNewline) {
  auto out = RunCase("apply/config.yaml", {"apply/strategic4.yaml"});
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_TRUE(
      SemanticallyEqual(*out, ReadTestdata(std::string(kDir) + "apply/expected_manifests.yaml")));
  std::string contents = Scalar(Doc(*out), "cluster.inlineManifests.0.contents");
  EXPECT_TRUE(contents.starts_with("---\napiVersion: v1\nkind: ServiceAccount\n")) << contents;
  EXPECT_TRUE(contents.ends_with("  namespace: kube-system\n")) << contents;
  EXPECT_THAT(*out, HasSubstr("contents: |\n"));
}

// CASES.md "delete in multi-document": delete a document, a list item by key, a map key.
TEST(ConfigPatchCases, DeleteInMultiDocument) {
  auto out = RunCase("patchdelete/config.yaml", {"patchdelete/strategic1.yaml"});
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_TRUE(
      SemanticallyEqual(*out, ReadTestdata(std::string(kDir) + "patchdelete/expected.yaml")));
  Value v1 = Doc(*out, 0);
  EXPECT_EQ(Scalar(v1, "machine.network.hostname"), "<missing>");
  EXPECT_EQ(Scalar(v1, "machine.network.interfaces.0.interface"), "eth1");
  EXPECT_EQ(Size(v1, "machine.network.interfaces.0.addresses"), 2u);
  EXPECT_EQ(Scalar(v1, "machine.network.interfaces.1.interface"), "eth0");
  EXPECT_EQ(Scalar(v1, "machine.network.interfaces.1.dummy"), "true");
  EXPECT_EQ(Scalar(v1, "machine.network.interfaces.1.dhcp"), "<missing>");
  EXPECT_EQ(out->find("SideroLinkConfig"), std::string::npos);
  EXPECT_EQ(Scalar(Doc(*out, 1), "configFiles.0.mountPath"), "/etc/foo2");
  EXPECT_EQ(Size(Doc(*out, 1), "configFiles"), 1u);
}

// CASES.md "delete in control-plane config": admissionControl item, nodeLabels key, auditPolicy.
TEST(ConfigPatchCases, DeleteInControlPlaneConfig) {
  auto out = RunCase("patchdelete/controlplane_orig.yaml",
                     {"patchdelete/strategic2.yaml", "patchdelete/strategic3.yaml",
                      "patchdelete/strategic4.yaml"});
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_TRUE(SemanticallyEqual(
      *out, ReadTestdata(std::string(kDir) + "patchdelete/controlplane_expected.yaml")));
  Value doc = Doc(*out);
  EXPECT_EQ(Size(doc, "cluster.apiServer.admissionControl"), 0u);
  EXPECT_EQ(testing::Get(doc, "cluster.apiServer.auditPolicy"), nullptr);
  EXPECT_EQ(Size(doc, "machine.nodeLabels"), 0u);
  EXPECT_EQ(Scalar(doc, "machine.type"), "controlplane");
  EXPECT_EQ(Scalar(doc, "cluster.network.podSubnets.0"), "10.244.0.0/16");
  EXPECT_EQ(Scalar(doc, "machine.features.kubePrism.port"), "7445");
  // The base's key order is kept.
  EXPECT_LT(out->find("\nmachine:"), out->find("\ncluster:"));
  EXPECT_LT(out->find("    type: controlplane"), out->find("    token: d8cwfa"));
}

// CASES.md "$patch: delete decoder": the patch minus its delete directives, and the selectors.
TEST(ConfigPatchCases, DeleteDecoder) {
  const std::string dir = "configloader/internal/decoder/testdata/delete/";
  auto docs = ParseYamlDocuments(ReadTestdata(dir + "delete.yaml"), "delete.yaml");
  ASSERT_TRUE(docs.has_value()) << docs.error().message;
  auto steps = StripDeletes(std::move(*docs), "delete.yaml");
  ASSERT_TRUE(steps.has_value()) << steps.error().message;
  std::vector<Value> remaining;
  std::vector<DeleteSelector> selectors;
  for (auto& step : *steps) {
    selectors.insert(selectors.end(), step.deletes.begin(), step.deletes.end());
    if (step.doc) {
      remaining.push_back(*step.doc);
    }
  }
  EXPECT_TRUE(SemanticallyEqual(EmitYaml(remaining), ReadTestdata(dir + "delete_expected.yaml")));
  ASSERT_EQ(selectors.size(), 4u);
  EXPECT_EQ(selectors[0].doc_id, "v1alpha1/SideroLinkConfig");
  EXPECT_TRUE(selectors[0].path.empty());
  EXPECT_EQ(selectors[1].doc_id, "v1alpha1/ExtensionServiceConfig/foo");
  EXPECT_EQ(selectors[1].PathString(), "configFiles.[0]");
  EXPECT_EQ(selectors[1].item_key, "content");
  EXPECT_EQ(selectors[1].item_value, "hello");
  EXPECT_EQ(selectors[2].doc_id, "/v1alpha1");
  EXPECT_EQ(selectors[2].PathString(), "machine.hostname");
  EXPECT_EQ(selectors[3].PathString(), "machine.network.[0]");
  EXPECT_EQ(selectors[3].item_key, "interface");
  EXPECT_EQ(selectors[3].item_value, "eth0");
}

// The JSON-format patch Talos ships (testdata/patch.json) adds certSANs.
TEST(ConfigPatchCases, JsonFormatPatch) {
  auto out = RunCase("apply/config.yaml", {"patch.json", "strategic.yaml"});
  ASSERT_TRUE(out.has_value()) << out.error().message;
  Value doc = Doc(*out);
  EXPECT_EQ(Scalar(doc, "machine.certSANs.0"), "foo.com");
  EXPECT_EQ(Scalar(doc, "machine.network.hostname"), "foo.bar");
}

}  // namespace
}  // namespace ironboot::talos
