// Issue 5 round trips through the built binary, as an operator runs them:
// `ironboot secrets gen` -> load -> save -> load gives the same bundle, and
// rendering examples/homelab with that bundle twice gives the same files byte
// for byte. Also the warning when the Cluster names base configs that a
// secrets bundle overrides (validate, render and serve's RenderRevision).

#include <filesystem>
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controller/gitops.h"
#include "manifests/repo_dir.h"
#include "talos/secrets_bundle.h"
#include "tests/testutil/testutil.h"

namespace ironboot::controller {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testutil::TempDir;

const std::string kBinary = IRONBOOT_BINARY;
const std::string kHomelab = std::string(IRONBOOT_SOURCE_DIR) + "/examples/homelab";

// Every regular file under `root` by relative path, with its bytes.
std::map<std::string, std::string> Tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) {
      out[fs::relative(entry.path(), root).generic_string()] = testutil::ReadFile(entry.path());
    }
  }
  return out;
}

class SecretsRoundTripTest : public ::testing::Test {
 protected:
  // One generated bundle for all tests (RSA-4096 generation takes seconds).
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    bundle_file_ = (dir_->path() / "secrets.yaml").string();
    auto r = testutil::Run({kBinary, "secrets", "gen", "--out", bundle_file_});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static TempDir* dir_;
  static std::string bundle_file_;
};
TempDir* SecretsRoundTripTest::dir_ = nullptr;
std::string SecretsRoundTripTest::bundle_file_;

// gen -> load -> save -> load: the same bundle (every secret, and the saved
// bytes equal the file `secrets gen` wrote).
TEST_F(SecretsRoundTripTest, GenLoadSaveLoadIsTheSameBundle) {
  auto first = talos::LoadSecretsBundleFile(bundle_file_);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  std::string saved = talos::SaveSecretsBundle(*first);
  EXPECT_EQ(saved, testutil::ReadFile(bundle_file_));
  std::string copy = (dir_->path() / "copy.yaml").string();
  testutil::WriteFile(copy, saved);
  auto second = talos::LoadSecretsBundleFile(copy);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(talos::SecretStrings(*second), talos::SecretStrings(*first));
  EXPECT_EQ(talos::SaveSecretsBundle(*second), saved);
}

// gen -> render examples/homelab --secrets twice: the same files byte for
// byte, with configs generated from the bundle (its trustd token inside).
TEST_F(SecretsRoundTripTest, RenderTwiceIsByteForByteTheSame) {
  fs::path out1 = dir_->path() / "out1";
  fs::path out2 = dir_->path() / "out2";
  for (const fs::path& out : {out1, out2}) {
    auto r = testutil::Run(
        {kBinary, "render", kHomelab, "--out", out.string(), "--secrets", bundle_file_});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  auto a = Tree(out1);
  auto b = Tree(out2);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a.size(), b.size());
  size_t configs = 0;
  auto bundle = talos::LoadSecretsBundleFile(bundle_file_);
  ASSERT_TRUE(bundle.has_value());
  for (const auto& [path, bytes] : a) {
    ASSERT_TRUE(b.contains(path)) << path;
    EXPECT_TRUE(bytes == b.at(path)) << path << " differs between two renders";
    if (path.starts_with("generic/")) {
      ++configs;
      EXPECT_THAT(bytes, HasSubstr(bundle->trustd_token)) << path;
    }
  }
  EXPECT_GE(configs, 3u);
}

// A Cluster naming spec.baseConfigs while a bundle is in use: validate and
// render warn (exit 0), naming cluster.yaml with line and each field; without
// a bundle there is no such warning.
TEST_F(SecretsRoundTripTest, BaseConfigsWithBundleWarn) {
  auto v = testutil::Run({kBinary, "validate", kHomelab, "--secrets", bundle_file_});
  EXPECT_EQ(v.exit_code, 0) << v.output;
  const std::string file = (fs::path(kHomelab) / "cluster.yaml").lexically_normal().string();
  for (const char* field : {"controlplane", "worker"}) {
    EXPECT_THAT(v.output, ::testing::ContainsRegex(
                              file + ":[0-9]+:[0-9]+: warning: spec\\.baseConfigs\\." + field +
                              ": ignored: base configs are generated from the secrets bundle"))
        << v.output;
  }
  auto r = testutil::Run({kBinary, "render", kHomelab, "--out", (dir_->path() / "o").string(),
                          "--secrets", bundle_file_});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("warning: spec.baseConfigs.controlplane: ignored"));
  auto plain = testutil::Run({kBinary, "validate", kHomelab});
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_THAT(plain.output, Not(HasSubstr("spec.baseConfigs")));
}

// serve's path (RenderRevision, what -secrets-file and -age-identity use)
// carries the same warning, positioned at the field in cluster.yaml.
TEST_F(SecretsRoundTripTest, RenderRevisionWarnsAboutBaseConfigs) {
  auto files = manifests::ReadRepoDir(kHomelab);
  ASSERT_TRUE(files.has_value());
  auto bundle = talos::LoadSecretsBundleFile(bundle_file_);
  ASSERT_TRUE(bundle.has_value());
  auto rendered = RenderRevision(*files, {}, &*bundle);
  ASSERT_TRUE(rendered.has_value()) << rendered.error().ToString();
  std::string warnings = rendered->warnings.ToString();
  EXPECT_THAT(warnings, ::testing::ContainsRegex(
                            "cluster\\.yaml:[0-9]+:[0-9]+: warning: spec\\.baseConfigs\\.worker: "
                            "ignored"))
      << warnings;
  auto without = RenderRevision(*files, {}, nullptr);
  ASSERT_TRUE(without.has_value());
  EXPECT_THAT(without->warnings.ToString(), Not(HasSubstr("spec.baseConfigs")));
}

}  // namespace
}  // namespace ironboot::controller
