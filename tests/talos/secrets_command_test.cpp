// `ironboot secrets gen` and `ironboot talosconfig` end to end through the binary.

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "talos/secrets_bundle.h"
#include "talos/yaml_value.h"
#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

// secrets gen writes a loadable 0600 bundle; talosconfig builds on it; with debug logging
// no key, token or secret of the bundle (PEM or base64) appears in any output or message.
TEST(SecretsCommand, GenAndTalosconfigNeverPrintSecrets) {
  testutil::TempDir dir;
  std::string bundle_path = (dir.path() / "secrets.yaml").string();
  std::string tc_path = (dir.path() / "talosconfig").string();
  std::string all_output;
  auto gen = testutil::Run(
      {IRONBOOT_BINARY, "secrets", "gen", "--out", bundle_path, "--log-level", "debug"});
  all_output += gen.output;
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  struct stat st {};
  ASSERT_EQ(::stat(bundle_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto bundle = LoadSecretsBundleFile(bundle_path);
  ASSERT_TRUE(bundle.has_value()) << bundle.error().message;

  auto again = testutil::Run({IRONBOOT_BINARY, "secrets", "gen", "--out", bundle_path});
  all_output += again.output;
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find(bundle_path + " exists (use --force to overwrite it)"),
            std::string::npos)
      << again.output;

  auto tc = testutil::Run({IRONBOOT_BINARY, "talosconfig", "--secrets", bundle_path, "--endpoints",
                           "10.0.4.101,10.0.4.102", "--name", "homelab", "--out", tc_path,
                           "--log-level", "debug"});
  all_output += tc.output;
  ASSERT_EQ(tc.exit_code, 0) << tc.output;
  ASSERT_EQ(::stat(tc_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto docs = ParseYamlDocuments(testutil::ReadFile(tc_path), "talosconfig");
  ASSERT_TRUE(docs.has_value());
  EXPECT_EQ((*docs)[0].Find("context")->scalar, "homelab");
  const Value* ctx = (*docs)[0].Find("contexts")->Find("homelab");
  ASSERT_NE(ctx, nullptr);
  std::string client_key = *Base64Decode(ctx->Find("key")->scalar);

  // A corrupted bundle: the error names the field and shows no secret.
  std::string bad_path = (dir.path() / "bad.yaml").string();
  std::string text = testutil::ReadFile(bundle_path);
  size_t pos = text.find("    token: ");
  text.replace(pos + 11, 3, "XYZ");
  testutil::WriteFile(bad_path, text);
  auto bad = testutil::Run({IRONBOOT_BINARY, "talosconfig", "--secrets", bad_path, "--endpoints",
                            "10.0.4.101", "--log-level", "debug"});
  all_output += bad.output;
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("trustdinfo.token: not a token"), std::string::npos) << bad.output;

  std::vector<std::string> secrets = SecretStrings(*bundle);
  secrets.push_back(client_key);
  secrets.push_back(Base64Encode(client_key));
  for (const std::string& s : secrets) {
    ASSERT_FALSE(s.empty());
    EXPECT_EQ(all_output.find(s), std::string::npos) << "a secret leaked into the output";
    // Also any single line of a PEM body (a partial leak).
    size_t body = s.find("-----\n");
    if (body != std::string::npos) {
      std::string first_line = s.substr(body + 6, s.find('\n', body + 6) - body - 6);
      EXPECT_EQ(all_output.find(first_line), std::string::npos) << "a PEM line leaked";
    }
  }
  EXPECT_NE(all_output.find("debug"), std::string::npos) << "debug logging was on: " << all_output;
}

// Usage errors name the flag.
TEST(SecretsCommand, UsageErrors) {
  auto no_out = testutil::Run({IRONBOOT_BINARY, "secrets", "gen"});
  EXPECT_EQ(no_out.exit_code, 2);
  EXPECT_NE(no_out.output.find("--out FILE is required"), std::string::npos) << no_out.output;
  auto sub = testutil::Run({IRONBOOT_BINARY, "secrets", "rotate"});
  EXPECT_EQ(sub.exit_code, 2);
  EXPECT_NE(sub.output.find("unknown subcommand \"rotate\""), std::string::npos);
  auto no_secrets = testutil::Run({IRONBOOT_BINARY, "talosconfig", "--endpoints", "a"});
  EXPECT_EQ(no_secrets.exit_code, 2);
  EXPECT_NE(no_secrets.output.find("--secrets FILE is required"), std::string::npos);
  auto missing = testutil::Run(
      {IRONBOOT_BINARY, "talosconfig", "--secrets", "/nonexistent/s.yaml", "--endpoints", "a"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot read secrets bundle /nonexistent/s.yaml"),
            std::string::npos);
  auto no_endpoints = testutil::Run({IRONBOOT_BINARY, "talosconfig", "--secrets",
                                     std::string(IRONBOOT_SHARED_DIR) +
                                         "/talos/testdata/generate/secrets/testdata/secrets.yaml"});
  EXPECT_EQ(no_endpoints.exit_code, 1);
  EXPECT_NE(no_endpoints.output.find("no endpoints"), std::string::npos) << no_endpoints.output;
}

// An --out in a directory that does not exist is refused (not created), the
// error naming the file; nothing is left behind.
TEST(SecretsCommand, UnwritableOutNamesTheFile) {
  testutil::TempDir dir;
  std::string out = (dir.path() / "missing" / "secrets.yaml").string();
  auto gen = testutil::Run({IRONBOOT_BINARY, "secrets", "gen", "--out", out});
  EXPECT_EQ(gen.exit_code, 1);
  EXPECT_NE(gen.output.find("cannot write " + out + ": No such file or directory"), std::string::npos)
      << gen.output;
  std::string shared = std::string(IRONBOOT_SHARED_DIR) + "/talos/testdata/generate/secrets/testdata/secrets.yaml";
  auto tc = testutil::Run({IRONBOOT_BINARY, "talosconfig", "--secrets", shared, "--endpoints", "a",
                           "--out", out});
  EXPECT_EQ(tc.exit_code, 1);
  EXPECT_NE(tc.output.find("ironboot talosconfig: cannot write " + out), std::string::npos) << tc.output;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "missing"));
}

}  // namespace
}  // namespace ironboot::talos
