// Tests of the last-good-plan file: round trip, permissions, and the errors a
// damaged state dir produces.

#include "controller/plan_file.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace ironboot::controller {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testutil::TempDir;
using testutil::WriteFile;

reconcilers::PublishedPlan SamplePlan(const fs::path& asset_dir) {
  reconcilers::PublishedPlan p;
  p.revision = "main@sha1:0123456789abcdef0123456789abcdef01234567";
  auto& plan = p.plan;
  plan.groups.push_back({"cp1",
                         "cp1",
                         "talos-v1.11.3-amd64",
                         {{"mac", "00:23:24:e7:29:40"}},
                         nlohmann::json{{"role", "controlplane"}, {"n", 3}},
                         "machines/cp1.yaml"});
  plan.profiles.push_back({"talos-v1.11.3-amd64",
                           "Talos v1.11.3",
                           "/assets/talos/v1.11.3/amd64/vmlinuz",
                           {"/assets/talos/v1.11.3/amd64/initramfs.xz"},
                           {"talos.platform=metal", "console=ttyS0", "quote=\"x y\""},
                           "",
                           "cluster.yaml"});
  plan.machine_configs["00:23:24:e7:29:40"] =
      "version: v1alpha1\nmachine:\n  token: secret-token\n  network:\n    hostname: cp1\n";
  plan.machines.push_back({"cp1",
                           "controlplane",
                           {"00:23:24:e7:29:40"},
                           "10.0.4.101/24",
                           "v1.11.3",
                           "amd64",
                           "talos-v1.11.3-amd64",
                           true});
  manifests::PlanRelease release;
  release.version = "v1.11.3";
  release.arch = "amd64";
  release.kernel = {"file:///srv/vmlinuz", std::string(128, 'a'), "", "vmlinuz",
                    "talos/v1.11.3/amd64/vmlinuz"};
  release.initramfs = {"https://example.invalid/initramfs-amd64.xz", "",
                       "https://example.invalid/sha512sum.txt", "initramfs-amd64.xz",
                       "talos/v1.11.3/amd64/initramfs.xz"};
  release.installer_image = "ghcr.io/siderolabs/installer:v1.11.3";
  plan.releases.push_back(release);
  WriteFile(asset_dir / "kernel", "kernel bytes");
  WriteFile(asset_dir / "initramfs", "initramfs bytes");
  p.assets["talos/v1.11.3/amd64/vmlinuz"] = asset_dir / "kernel";
  p.assets["talos/v1.11.3/amd64/initramfs.xz"] = asset_dir / "initramfs";
  return p;
}

// A saved plan loads back equal in every field (groups with metadata,
// profiles, configs, machines, releases, assets), and the parent directory is
// created.
TEST(PlanFileTest, RoundTrip) {
  TempDir tmp;
  auto plan = SamplePlan(tmp / "assets");
  fs::path file = tmp / "state" / "plan" / "last-good.json";

  ASSERT_TRUE(SavePlan(plan, file).has_value());
  auto loaded = LoadPlan(file);

  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->revision, plan.revision);
  EXPECT_EQ(loaded->plan, plan.plan);
  EXPECT_EQ(loaded->assets, plan.assets);
  EXPECT_FALSE(fs::exists(file.string() + ".tmp"));
}

// Saving again replaces the file (the newest plan wins).
TEST(PlanFileTest, SaveReplaces) {
  TempDir tmp;
  auto plan = SamplePlan(tmp / "assets");
  fs::path file = tmp / "last-good.json";
  ASSERT_TRUE(SavePlan(plan, file).has_value());
  plan.revision = "main@sha1:ffffffffffffffffffffffffffffffffffffffff";
  plan.plan.machines[0].paused = false;
  ASSERT_TRUE(SavePlan(plan, file).has_value());

  auto loaded = LoadPlan(file);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->revision, plan.revision);
  EXPECT_FALSE(loaded->plan.machines[0].paused);
}

// The file holds machine configs (secrets): it is written with mode 0600,
// also when it replaces a file that was world-readable.
TEST(PlanFileTest, ModeIs0600) {
  TempDir tmp;
  fs::path file = tmp / "last-good.json";
  WriteFile(file, "old");
  ::chmod(file.c_str(), 0644);
  ASSERT_TRUE(SavePlan(SamplePlan(tmp / "assets"), file).has_value());

  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// No file yet is kNotFound (a first start), not an error to warn about.
TEST(PlanFileTest, MissingFileIsNotFound) {
  TempDir tmp;
  auto loaded = LoadPlan(tmp / "plan" / "last-good.json");
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, ErrorCode::kNotFound);
}

// A truncated, non-JSON, wrong-format or wrong-shape file is kInvalid and the
// message names the file.
TEST(PlanFileTest, CorruptFileIsInvalidAndNamed) {
  TempDir tmp;
  fs::path file = tmp / "last-good.json";
  ASSERT_TRUE(SavePlan(SamplePlan(tmp / "assets"), file).has_value());
  std::string good = testutil::ReadFile(file);

  for (const std::string& bad :
       {good.substr(0, good.size() / 2), std::string("not json at all"), std::string("{}"),
        std::string(R"({"format": 99, "revision": "r", "plan": {}, "assets": {}})"),
        std::string(R"({"format": 1, "revision": 7, "plan": {}, "assets": {}})")}) {
    WriteFile(file, bad);
    auto loaded = LoadPlan(file);
    ASSERT_FALSE(loaded.has_value()) << bad;
    EXPECT_EQ(loaded.error().code, ErrorCode::kInvalid) << bad;
    EXPECT_THAT(loaded.error().message, HasSubstr(file.string())) << bad;
  }
}

// An asset file that vanished (the state dir was cleaned) makes the plan
// unusable; the error names the file, the served path and the missing file.
TEST(PlanFileTest, VanishedAssetIsError) {
  TempDir tmp;
  fs::path file = tmp / "last-good.json";
  ASSERT_TRUE(SavePlan(SamplePlan(tmp / "assets"), file).has_value());
  fs::remove(tmp / "assets" / "initramfs");

  auto loaded = LoadPlan(file);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(loaded.error().message, HasSubstr(file.string()));
  EXPECT_THAT(loaded.error().message, HasSubstr("talos/v1.11.3/amd64/initramfs.xz"));
  EXPECT_THAT(loaded.error().message, HasSubstr((tmp / "assets" / "initramfs").string()));
}

// A state dir that cannot be written gives an error naming the path.
TEST(PlanFileTest, UnwritableDirectoryIsError) {
  TempDir tmp;
  WriteFile(tmp / "blocker", "a file where a directory should be");
  auto saved = SavePlan(SamplePlan(tmp / "assets"), tmp / "blocker" / "last-good.json");
  ASSERT_FALSE(saved.has_value());
  EXPECT_THAT(saved.error().message, HasSubstr((tmp / "blocker").string()));
}

}  // namespace
}  // namespace ironboot::controller
