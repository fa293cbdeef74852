// `ironboot validate DIR` and `ironboot render DIR --out OUT`, run as the built binary.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/manifests/manifests_test_util.h"
#include "tests/testutil/testutil.h"

namespace ironboot::manifests {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testutil::ReadFile;
using testutil::TempDir;
using testutil::WriteFile;

const std::string kHomelab = std::string(IRONBOOT_SOURCE_DIR) + "/examples/homelab";

void WriteRepo(const std::filesystem::path& dir, const RepoFiles& files) {
  for (const auto& [path, content] : files) {
    WriteFile(dir / path, content);
  }
}

// The homelab example validates clean: no errors and no warnings (its base
// configs leave out `persist`, which the v1.11 schema no longer has).
TEST(CliTest, ValidateHomelabIsClean) {
  auto r = testutil::Run({IRONBOOT_BINARY, "validate", kHomelab});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("valid: 3 machine(s), 3 group(s), 3 profile(s), 0 warning(s)"));
}

// Every error is printed with DIR-relative file:line:col, and the exit status is 1.
TEST(CliTest, ValidatePrintsEveryErrorAndFails) {
  TempDir tmp;
  auto files = test::ValidRepo();
  files["machines/cp1.yaml"] =
      test::MachineYaml("cp1", "controlplane", "00:23:24:e7:29", "10.0.4.11/24");
  files["machines/w1.yaml"] = test::MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24",
                                                "  instalDisk: /dev/sdb\n");
  WriteRepo(tmp.path() / "repo", files);
  auto r = testutil::Run({IRONBOOT_BINARY, "validate", "repo"}, tmp.path());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("repo/machines/cp1.yaml:7:8: spec.mac: \"00:23:24:e7:29\" is not "
                                  "a MAC address (want 6 octets)\n"));
  EXPECT_THAT(r.output, HasSubstr("repo/machines/w1.yaml:9:3: spec.instalDisk: unknown field "
                                  "\"instalDisk\" (did you mean \"installDisk\"?)\n"));
  EXPECT_THAT(r.output, HasSubstr("repo: 2 error(s), 0 warning(s)"));
}

// Warnings alone do not fail validation.
TEST(CliTest, ValidateWithWarningsOnlySucceeds) {
  TempDir tmp;
  auto files = test::ValidRepo();
  files.erase("machines/cp3.yaml");
  WriteRepo(tmp.path(), files);
  auto r = testutil::Run({IRONBOOT_BINARY, "validate", tmp.path().string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cluster.yaml:1:1: warning: 2 control planes (cp1, cp2)"));
  EXPECT_THAT(r.output, HasSubstr("1 warning(s)"));
}

// Render-time errors (a patch that does not apply) fail validate too.
TEST(CliTest, ValidateRendersMachineConfigs) {
  TempDir tmp;
  auto files = test::ValidRepo();
  files["bad.yaml"] = "- op: remove\n  path: /machine/nothing\n";
  files["machines/w1.yaml"] = test::MachineYaml("w1", "worker", "00:00:00:00:00:04", "10.0.4.21/24",
                                                "  patches: [/bad.yaml]\n");
  WriteRepo(tmp.path(), files);
  auto r = testutil::Run({IRONBOOT_BINARY, "validate", tmp.path().string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("machines/w1.yaml:9:12: spec.patches: machine \"w1\": bad.yaml"));
}

// --previous DIR refuses an upgrade that skips a Talos minor release.
TEST(CliTest, ValidatePreviousRefusesSkippedMinor) {
  TempDir tmp;
  WriteRepo(tmp.path() / "old", test::ValidRepo());
  auto files = test::ValidRepo();
  std::string cluster = test::kClusterYaml;
  while (cluster.find("v1.11.3") != std::string::npos) {
    cluster.replace(cluster.find("v1.11.3"), 7, "v1.13.0");
  }
  files["cluster.yaml"] = cluster;
  WriteRepo(tmp.path() / "new", files);
  auto r = testutil::Run({IRONBOOT_BINARY, "validate", "new", "--previous", "old"}, tmp.path());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("new/cluster.yaml:7:17: spec.talosVersion: \"v1.13.0\" skips a minor "
                        "release: 4 machines (cp1, cp2, cp3, w1) run v1.11.3"));
  // Without --previous the same repo is valid (nothing to compare with).
  EXPECT_EQ(testutil::Run({IRONBOOT_BINARY, "validate", "new"}, tmp.path()).exit_code, 0);
}

// Usage errors exit 2; a missing directory exits 1 naming it.
TEST(CliTest, ValidateUsageAndMissingDir) {
  auto r = testutil::Run({IRONBOOT_BINARY, "validate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("missing DIR"));
  r = testutil::Run({IRONBOOT_BINARY, "validate", "/nonexistent/repo"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/repo: not a directory"));
  r = testutil::Run({IRONBOOT_BINARY, "render", kHomelab});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("missing --out OUT"));
}

// render writes a Matchbox data dir, byte-identical on a second run, and
// removes files the repo no longer renders.
TEST(CliTest, RenderWritesMatchboxDataDir) {
  TempDir tmp;
  WriteFile(tmp.path() / "out/groups/stale.json", "{}");
  auto r =
      testutil::Run({IRONBOOT_BINARY, "render", kHomelab, "--out", (tmp.path() / "out").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("wrote 3 group(s), 3 profile(s), 3 machine config(s)"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "out/groups/stale.json"));
  std::string group = ReadFile(tmp.path() / "out/groups/controlplane1.json");
  EXPECT_THAT(group, HasSubstr("\"mac\": \"00:23:24:e7:29:40\""));
  std::string profile = ReadFile(tmp.path() / "out/profiles/controlplane1.json");
  EXPECT_THAT(profile, HasSubstr("\"kernel\": \"/assets/talos/1.11.3/amd64/vmlinuz\""));
  EXPECT_THAT(profile, HasSubstr("\"generic_id\": \"controlplane1.yaml\""));
  std::string config = ReadFile(tmp.path() / "out/generic/controlplane1.yaml");
  EXPECT_THAT(config, HasSubstr("hostname: controlplane1"));

  auto again =
      testutil::Run({IRONBOOT_BINARY, "render", kHomelab, "--out", (tmp.path() / "out2").string()});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  for (const char* f :
       {"groups/controlplane2.json", "profiles/controlplane2.json", "generic/controlplane2.yaml"}) {
    EXPECT_EQ(ReadFile(tmp.path() / "out" / f), ReadFile(tmp.path() / "out2" / f)) << f;
  }
}

// render of an invalid repo prints the errors and writes nothing.
TEST(CliTest, RenderOfInvalidRepoWritesNothing) {
  TempDir tmp;
  auto files = test::ValidRepo();
  files["machines/w1.yaml"] = test::MachineYaml("w1", "boss", "00:00:00:00:00:04", "10.0.4.21/24");
  WriteRepo(tmp.path() / "repo", files);
  auto r = testutil::Run({IRONBOOT_BINARY, "render", "repo", "--out", "out"}, tmp.path());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("repo/machines/w1.yaml:6:9: spec.role: \"boss\" is not a role"));
  EXPECT_THAT(r.output, HasSubstr("nothing written to out"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "out"));
}

}  // namespace
}  // namespace ironboot::manifests
