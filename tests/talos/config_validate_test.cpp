// Tests of machine-config validation: Talos's own full configs pass their
// schema, schema failures name the instance and schema paths, each semantic
// check fails with its message, deprecated fields are warnings, and the
// per-config time is measured.

#include "talos/config_validate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <regex>

#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

using ::testing::HasSubstr;

const std::string kDecoderTestdata =
    std::string(IRONBOOT_SHARED_DIR) + "/talos/testdata/configloader/internal/decoder/testdata/";

std::string ControlPlane() {
  return testutil::ReadFile(kDecoderTestdata + "controlplane.yaml");
}
std::string Worker() {
  return testutil::ReadFile(kDecoderTestdata + "worker.yaml");
}

// Replaces the first match of `pattern` in `text` (the fixture's own lines).
std::string Edit(const std::string& text, const std::string& pattern,
                 const std::string& replacement) {
  std::string out = std::regex_replace(text, std::regex(pattern), replacement,
                                       std::regex_constants::format_first_only);
  EXPECT_NE(out, text) << "pattern not found: " << pattern;
  return out;
}

ValidationReport Validate(const std::string& yaml, std::string_view version = "v1.11.3",
                          MachineConfigExpectations expect = {}) {
  auto report = ValidateMachineConfig(yaml, version, expect);
  EXPECT_TRUE(report.has_value()) << report.error().message;
  return report.value_or(ValidationReport{});
}

std::vector<std::string> Lines(const std::vector<ConfigIssue>& issues) {
  std::vector<std::string> out;
  for (const auto& i : issues) {
    out.push_back(i.ToString());
  }
  return out;
}

// Talos's own full controlplane and worker configs pass the v1.11 schema and
// every semantic check.
TEST(ValidateMachineConfig, TalosFixturesPass) {
  for (const auto& yaml : {ControlPlane(), Worker()}) {
    auto report = Validate(yaml);
    EXPECT_TRUE(report.ok()) << report.ToString();
    // Their old-style fields (persist, install.bootloader, systemDiskEncryption)
    // are absent from the schema but accepted: warnings only.
    for (const auto& w : report.warnings) {
      EXPECT_THAT(w.message, HasSubstr("deprecated: not in the config.schema.v1.11.json schema"))
          << w.ToString();
    }
    EXPECT_EQ(report.talos_minor, "v1.11");
    EXPECT_EQ(report.schema_name, "config.schema.v1.11.json");
  }
}

// Each embedded schema compiles, and the versions map to their minors.
TEST(ValidateMachineConfig, EverySchemaCompiles) {
  EXPECT_THAT(SupportedTalosMinors(), ::testing::ElementsAre("v1.11", "v1.12", "v1.13", "v1.14"));
  for (const char* version : {"v1.11.6", "1.12", "v1.13.9", "v1.14.0-rc.1"}) {
    auto schema = TalosConfigSchema(version);
    EXPECT_TRUE(schema.has_value()) << version << ": " << (schema ? "" : schema.error().message);
  }
}

// An unknown minor or a non-version is refused with the list of known ones.
TEST(ValidateMachineConfig, UnknownVersion) {
  auto old = ValidateMachineConfig(ControlPlane(), "v1.10.7");
  ASSERT_FALSE(old.has_value());
  EXPECT_EQ(old.error().message,
            "no machine-config schema for Talos v1.10 (have v1.11, v1.12, v1.13, v1.14)");
  auto junk = ValidateMachineConfig(ControlPlane(), "latest");
  ASSERT_FALSE(junk.has_value());
  EXPECT_THAT(junk.error().message, HasSubstr("\"latest\" is not a version (want e.g. v1.11.3)"));
}

// Unparseable YAML and a config without a v1alpha1 document are errors.
TEST(ValidateMachineConfig, NotAConfig) {
  auto bad = ValidateMachineConfig("machine: [unclosed", "v1.11");
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message, HasSubstr("machine config:2:1: invalid YAML"));
  auto none =
      ValidateMachineConfig("apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: a\n", "v1.12");
  ASSERT_FALSE(none.has_value());
  EXPECT_THAT(none.error().message, HasSubstr("no v1alpha1 document"));
}

// A missing required field fails with the instance path and the schema path
// named. (The v1.11 v1alpha1 schema requires no field; its other document
// kinds do.)
TEST(ValidateMachineConfig, MissingRequiredField) {
  std::string yaml =
      ControlPlane() + "\n---\napiVersion: v1alpha1\nkind: EthernetConfig\nrings:\n    rx: 256\n";
  auto report = Validate(yaml);
  EXPECT_THAT(Lines(report.errors),
              ::testing::ElementsAre("document 2: /: missing required field \"name\" "
                                     "(schema #/$defs/network.EthernetConfigV1Alpha1/required)"));
  // And the endpoint, which the schema leaves optional, is required by our checks.
  std::string no_endpoint = Edit(ControlPlane(), "        endpoint: https://[^\n]*\n", "");
  EXPECT_THAT(Lines(Validate(no_endpoint).errors),
              ::testing::Contains(
                  "document 1: /cluster/controlPlane/endpoint: is not set (want an https URL such "
                  "as https://10.0.0.10:6443)"));
}

// A wrong type fails with both paths, and the message does not quote the value.
TEST(ValidateMachineConfig, WrongType) {
  std::string yaml = Edit(ControlPlane(), "wipe: false", "wipe: \"nope\"");
  auto report = Validate(yaml);
  EXPECT_THAT(
      Lines(report.errors),
      ::testing::ElementsAre("document 1: /machine/install/wipe: is a string, want boolean "
                             "(schema #/$defs/v1alpha1.InstallConfig/properties/wipe/type)"));
}

// Unknown fields and bad enum values are errors; secret values never appear.
TEST(ValidateMachineConfig, UnknownFieldAndEnum) {
  std::string yaml = Edit(ControlPlane(), "type: controlplane", "type: boss\n    tokne: x");
  auto report = Validate(yaml);
  auto lines = Lines(report.errors);
  EXPECT_THAT(
      lines, ::testing::Contains(HasSubstr("/machine/type: string is not one of: \"controlplane\", "
                                           "\"worker\"")));
  EXPECT_THAT(
      lines, ::testing::Contains(HasSubstr("/machine/tokne: field \"tokne\" is not allowed here")));
  EXPECT_THAT(report.ToString(), ::testing::Not(HasSubstr("2z19nz")));
}

// cluster.controlPlane.endpoint must be an https URL.
TEST(ValidateMachineConfig, EndpointMustBeHttps) {
  std::string cp = ControlPlane();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(cp, m, std::regex("endpoint: (https://[^ \n]+)")));
  for (auto [endpoint, problem] :
       {std::pair{"http://1.2.3.4:6443", "is not an https URL"},
        std::pair{"https://:6443", "has no valid host"},
        std::pair{"https://1.2.3.4:99999", "has an invalid port \"99999\""}}) {
    auto report = Validate(Edit(cp, m[1].str(), endpoint));
    // (The schema's own pattern ^https:// may report the first one as well.)
    EXPECT_THAT(
        Lines(report.errors),
        ::testing::Contains("document 1: /cluster/controlPlane/endpoint: \"" +
                            std::string(endpoint) + "\" " + problem +
                            " (want https://<host>[:<port>], e.g. https://10.0.0.10:6443)"));
  }
}

// Each control-plane address passed in must be in machine.certSANs.
TEST(ValidateMachineConfig, ControlPlaneAddressesInCertSANs) {
  std::string yaml = Edit(ControlPlane(), "certSANs: \\[\\]", "certSANs: [10.0.0.10]");
  MachineConfigExpectations expect{{"10.0.0.10", "10.0.0.11"}};
  auto report = Validate(yaml, "v1.11", expect);
  EXPECT_THAT(Lines(report.errors),
              ::testing::ElementsAre(
                  "document 1: /machine/certSANs: control-plane address 10.0.0.11 is missing "
                  "(certSANs: [10.0.0.10]); the Talos and Kubernetes API certificates would not "
                  "be valid for it"));
  // Workers are not held to it.
  EXPECT_TRUE(Validate(Worker(), "v1.11", expect).ok());
}

// An install disk or a disk selector must be set.
TEST(ValidateMachineConfig, InstallDiskRequired) {
  std::string yaml = Edit(ControlPlane(), "        disk: /dev/sda[^\n]*\n", "");
  auto report = Validate(yaml);
  EXPECT_THAT(Lines(report.errors),
              ::testing::ElementsAre(
                  "document 1: /machine/install: neither disk nor diskSelector is set; Talos "
                  "would not know where to install (want e.g. disk: /dev/sda, or diskSelector: "
                  "{size: '>= 100GB'})"));
  std::string selector =
      Edit(yaml, "    install:\n",
           "    install:\n        diskSelector:\n            size: '>= 100GB'\n");
  EXPECT_TRUE(Validate(selector).ok()) << Validate(selector).ToString();
}

// machine.network.hostname must be made of valid DNS labels.
TEST(ValidateMachineConfig, HostnameMustBeDnsLabels) {
  for (auto [hostname, problem] : {std::pair{"node_1", "label \"node_1\" contains '_'"},
                                   std::pair{"-node", "label \"-node\" starts or ends with '-'"},
                                   std::pair{"a..b", "has an empty label"}}) {
    std::string yaml = Edit(ControlPlane(), "    network:[^\n]*\n",
                            std::string("    network:\n        hostname: \"") + hostname + "\"\n");
    auto report = Validate(yaml);
    EXPECT_THAT(Lines(report.errors),
                ::testing::ElementsAre(
                    "document 1: /machine/network/hostname: \"" + std::string(hostname) +
                    "\" is not a valid hostname: " + problem +
                    " (want DNS labels of letters, digits and '-', 1-63 characters each, not "
                    "starting or ending with '-')"));
  }
  std::string fqdn = Edit(ControlPlane(), "    network:[^\n]*\n",
                          "    network:\n        hostname: cp-1.lab.example\n");
  EXPECT_TRUE(Validate(fqdn).ok());
}

// A field Talos still accepts but whose schema dropped it is a warning.
TEST(ValidateMachineConfig, DeprecatedFieldIsWarning) {
  std::string yaml =
      Edit(ControlPlane(), "        disk: /dev/sda[^\n]*\n",
           "        disk: /dev/sda\n        extraKernelArgs:\n            - console=ttyS0\n");
  auto v11 = Validate(yaml, "v1.11");
  EXPECT_TRUE(v11.ok()) << v11.ToString();  // still in the v1.11 schema
  for (const auto& w : v11.warnings) {
    EXPECT_NE(w.path, "/machine/install/extraKernelArgs");
  }
  auto v12 = Validate(yaml, "v1.12.11");
  EXPECT_THAT(Lines(v12.warnings),
              ::testing::Contains(
                  "document 1: /machine/install/extraKernelArgs: deprecated: not in the "
                  "config.schema.v1.12.json schema but still accepted by Talos (kernel args belong "
                  "to the boot assets since Talos 1.12); its content is not schema-checked (schema "
                  "#/$defs/v1alpha1.InstallConfig/additionalProperties)"));
  for (const auto& w : v12.warnings) {
    EXPECT_NE(w.path, "") << w.ToString();
  }
  // The list is explicit: every entry names a minor we have and a reason.
  for (const auto& d : DeprecatedFields()) {
    EXPECT_FALSE(d.note.empty()) << d.pointer;
    EXPECT_TRUE(d.pointer.starts_with("/")) << d.pointer;
  }
}

// Other documents are checked against their kind's schema, unknown kinds reported as not checked.
TEST(ValidateMachineConfig, MultiDocument) {
  std::string yaml = ControlPlane() +
                     "\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: bad_name\n"
                     "---\napiVersion: v1alpha1\nkind: MysteryConfig\nname: x\n";
  auto report = Validate(yaml, "v1.12");
  EXPECT_THAT(Lines(report.errors),
              ::testing::Contains(
                  HasSubstr("document 2: /hostname: \"bad_name\" is not a valid hostname")));
  EXPECT_THAT(report.not_checked,
              ::testing::ElementsAre("document 3 (MysteryConfig): not checked, the "
                                     "config.schema.v1.12.json schema has no such kind"));
  std::string typo =
      ControlPlane() + "\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostnam: a\n";
  EXPECT_THAT(Lines(Validate(typo, "v1.12").errors),
              ::testing::Contains(
                  HasSubstr("document 2: /hostnam: field \"hostnam\" is not allowed here")));
}

// Validation is fast enough for 10,000 configs: measured per config.
TEST(ValidateMachineConfig, PerConfigTime) {
  std::string cp = ControlPlane();
  ASSERT_TRUE(ValidateMachineConfig(cp, "v1.11").has_value());  // compiles the schema once
  constexpr int kRuns = 500;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) {
    auto report = ValidateMachineConfig(cp, "v1.11");
    ASSERT_TRUE(report.has_value() && report->ok());
  }
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
      kRuns;
  std::printf("validate controlplane.yaml (v1.11): %.3f ms per config\n", ms);
  EXPECT_LT(ms, 20.0);
}

}  // namespace
}  // namespace ironboot::talos
