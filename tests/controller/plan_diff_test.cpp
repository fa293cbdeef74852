#include "controller/plan_diff.h"

#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace ironboot::controller {
namespace {

manifests::BootPlan PlanWith(const std::string& version, const std::vector<std::string>& args,
                             const std::string& config) {
  manifests::BootPlan plan;
  manifests::MachineSummary m;
  m.name = "cp1";
  m.role = "controlplane";
  m.macs = {"00:23:24:e7:29:40"};
  m.talos_version = version;
  m.arch = "amd64";
  m.profile = "cp1";
  plan.machines.push_back(m);
  bootserver::Profile p;
  p.id = "cp1";
  p.args = args;
  plan.profiles.push_back(p);
  plan.machine_configs["00:23:24:e7:29:40"] = config;
  return plan;
}

// Identical plans report nothing to change.
TEST(PlanDiffTest, IdenticalPlansChangeNothing) {
  auto plan = PlanWith("v1.11.3", {"a=1"}, "machine:\n  type: controlplane\n");
  auto s = DiffPlans(plan, plan);
  EXPECT_EQ(s.changed + s.added + s.removed, 0);
  EXPECT_EQ(s.unchanged, 1);
  EXPECT_NE(s.text.find("0 to add, 0 to change, 0 to remove, 1 unchanged"), std::string::npos);
}

// A release bump, a changed kernel arg and a config change are each shown for the machine.
TEST(PlanDiffTest, ShowsReleaseArgsAndConfigChanges) {
  auto from = PlanWith("v1.11.3", {"console=tty0", "a=1"}, "machine:\n  network:\n    hostname: cp1\n");
  auto to = PlanWith("v1.12.0", {"console=tty0", "a=2"}, "machine:\n  network:\n    hostname: cp-one\n");
  auto s = DiffPlans(from, to);
  EXPECT_EQ(s.changed, 1);
  EXPECT_NE(s.text.find("~ machine cp1"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("release: v1.11.3/amd64 -> v1.12.0/amd64"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("kernel arg - a=1"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("kernel arg + a=2"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("  -     hostname: cp1"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("  +     hostname: cp-one"), std::string::npos) << s.text;
  EXPECT_EQ(s.text.find("console=tty0"), std::string::npos) << "unchanged args are not listed";
}

// Machines only in the new plan are added; only in the old, removed.
TEST(PlanDiffTest, AddedAndRemovedMachines) {
  manifests::BootPlan empty;
  auto plan = PlanWith("v1.11.3", {}, "");
  auto added = DiffPlans(empty, plan);
  EXPECT_EQ(added.added, 1);
  EXPECT_NE(added.text.find("+ machine cp1 (controlplane, 00:23:24:e7:29:40): boots v1.11.3/amd64"),
            std::string::npos)
      << added.text;
  auto removed = DiffPlans(plan, empty);
  EXPECT_EQ(removed.removed, 1);
  EXPECT_NE(removed.text.find("- machine cp1"), std::string::npos);
}

// Secret values never appear in a plan: keys, tokens, secrets and PEM private keys are masked.
TEST(PlanDiffTest, SecretsAreMasked) {
  std::string old_config =
      "machine:\n  token: abcdef.0123456789abcdef\n  ca:\n    crt: Q0VSVA==\n    key: U0VDUkVUS0VZ\n"
      "cluster:\n  secret: c2VjcmV0c2VjcmV0\n  secretboxEncryptionSecret: Ym94c2VjcmV0\n"
      "  inline: |\n    -----BEGIN EC PRIVATE KEY-----\n    TUlJQ0lOTElORQ==\n    -----END EC PRIVATE KEY-----\n";
  std::string new_config = old_config;
  new_config.replace(new_config.find("abcdef.0123456789abcdef"), 23, "zzzzzz.9999999999999999");
  new_config += "  clusterName: x\n";
  auto s = DiffPlans(PlanWith("v1.11.3", {}, old_config), PlanWith("v1.11.3", {}, new_config));
  for (const char* secret : {"abcdef.0123456789abcdef", "zzzzzz.9999999999999999", "U0VDUkVUS0VZ",
                             "c2VjcmV0c2VjcmV0", "Ym94c2VjcmV0", "TUlJQ0lOTElORQ=="}) {
    EXPECT_EQ(s.text.find(secret), std::string::npos) << secret << " leaked:\n" << s.text;
  }
  EXPECT_NE(s.text.find("clusterName: x"), std::string::npos) << s.text;
  std::string masked = MaskSecrets(old_config);
  EXPECT_NE(masked.find("crt: Q0VSVA=="), std::string::npos) << "certificates are public: " << masked;
  EXPECT_NE(masked.find("    key: ***"), std::string::npos) << masked;
}

// `ironboot plan DIR --against DIR` on the homelab example: exit 2 and the changed machine named.
TEST(PlanCommandTest, DirAgainstDir) {
  testutil::TempDir tmp;
  auto src = std::string(IRONBOOT_SOURCE_DIR) + "/examples/homelab";
  ASSERT_EQ(testutil::Run({"cp", "-r", src, (tmp / "new").string()}).exit_code, 0);
  auto same = testutil::Run({IRONBOOT_BINARY, "plan", (tmp / "new").string(), "--against", src});
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("0 to add, 0 to change, 0 to remove, 3 unchanged"), std::string::npos)
      << same.output;
  auto m2 = tmp / "new/machines/controlplane2.yaml";
  std::string text = testutil::ReadFile(m2);
  text.replace(text.find("10.0.4.102"), 10, "10.0.4.112");
  testutil::WriteFile(m2, text);
  // Every control-plane address must be in the certSANs (validated before a plan is shown).
  auto all = tmp / "new/patches/all.yaml";
  std::string patch = testutil::ReadFile(all);
  patch.replace(patch.find("    - 10.0.4.103"), 0, "    - 10.0.4.112\n");
  testutil::WriteFile(all, patch);
  auto changed = testutil::Run({IRONBOOT_BINARY, "plan", (tmp / "new").string(), "--against", src});
  EXPECT_EQ(changed.exit_code, 2) << changed.output;
  EXPECT_NE(changed.output.find("~ machine controlplane2"), std::string::npos) << changed.output;
  EXPECT_NE(changed.output.find("address: 10.0.4.102/24 -> 10.0.4.112/24"), std::string::npos)
      << changed.output;
}

// A broken new revision is an error (exit 1) that shows the diagnostic.
TEST(PlanCommandTest, BrokenRevisionIsAnError) {
  testutil::TempDir tmp;
  auto src = std::string(IRONBOOT_SOURCE_DIR) + "/examples/homelab";
  ASSERT_EQ(testutil::Run({"cp", "-r", src, (tmp / "new").string()}).exit_code, 0);
  testutil::WriteFile(tmp / "new/machines/controlplane1.yaml", "kind: [broken\n");
  auto r = testutil::Run({IRONBOOT_BINARY, "plan", (tmp / "new").string(), "--against", src});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("machines/controlplane1.yaml:"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ironboot::controller
