#include "talos/talosconfig.h"

#include <gtest/gtest.h>

#include "talos/yaml_value.h"
#include "tests/talos/secrets_fixture.h"
#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

using testing::GeneratedBundle;

// The talosconfig has FACTS.md's shape and a client certificate that openssl verifies
// against the os CA, with Organization os:admin, clientAuth and a 1-year lifetime.
TEST(Talosconfig, ShapeAndCertificate) {
  SystemClock clock;
  TalosconfigOptions o{"homelab", {"10.0.4.101", "10.0.4.102"}, {}, "os:admin"};
  auto yaml = GenerateTalosconfig(GeneratedBundle(), o, clock);
  ASSERT_TRUE(yaml.has_value()) << yaml.error().message;
  auto docs = ParseYamlDocuments(*yaml, "talosconfig");
  ASSERT_TRUE(docs && docs->size() == 1);
  const Value& root = (*docs)[0];
  ASSERT_EQ(root.entries.size(), 2u);
  EXPECT_EQ(root.Find("context")->scalar, "homelab");
  const Value* ctx = root.Find("contexts")->Find("homelab");
  ASSERT_NE(ctx, nullptr);
  std::vector<std::string> keys;
  for (const auto& e : ctx->entries) {
    keys.push_back(e.key);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"endpoints", "ca", "crt", "key"}));
  EXPECT_EQ(ctx->Find("endpoints")->items.size(), 2u);
  EXPECT_EQ(ctx->Find("endpoints")->items[1].scalar, "10.0.4.102");
  EXPECT_EQ(*Base64Decode(ctx->Find("ca")->scalar), GeneratedBundle().os.crt);
  std::string crt = *Base64Decode(ctx->Find("crt")->scalar);
  std::string key = *Base64Decode(ctx->Find("key")->scalar);
  EXPECT_TRUE(key.starts_with("-----BEGIN ED25519 PRIVATE KEY-----"));
  EXPECT_TRUE(*CertificateMatchesKey(crt, key, "client"));
  auto info = InspectCertificate(crt, "client");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->subject, "O=os:admin");
  EXPECT_EQ(info->issuer, "O=talos");
  EXPECT_TRUE(info->client_auth);
  EXPECT_FALSE(info->is_ca);
  EXPECT_EQ(info->key_type, KeyType::kEd25519);
  EXPECT_EQ(info->not_after - info->not_before, std::chrono::hours(24 * 365));

  testutil::TempDir dir;
  testutil::WriteFile(dir.path() / "osca.pem", GeneratedBundle().os.crt);
  testutil::WriteFile(dir.path() / "client.pem", crt);
  auto r =
      testutil::Run({"openssl", "verify", "-purpose", "sslclient", "-CAfile",
                     (dir.path() / "osca.pem").string(), (dir.path() / "client.pem").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// The talosctl fixture bundle (older Talos) also yields a verifiable talosconfig.
TEST(Talosconfig, FromTalosctlBundle) {
  auto b = LoadSecretsBundleFile(testing::TalosTestdata("generate/secrets/testdata/secrets.yaml"));
  ASSERT_TRUE(b.has_value());
  SystemClock clock;
  auto yaml = GenerateTalosconfig(*b, {"c", {"1.2.3.4"}, {"1.2.3.5"}, "os:reader"}, clock);
  ASSERT_TRUE(yaml.has_value()) << yaml.error().message;
  EXPECT_NE(yaml->find("nodes:\n            - 1.2.3.5"), std::string::npos) << *yaml;
}

// Missing name or endpoints and unknown roles are refused with a clear message.
TEST(Talosconfig, BadOptions) {
  SystemClock clock;
  auto r1 = GenerateTalosconfig(GeneratedBundle(), {"", {"a"}, {}, "os:admin"}, clock);
  EXPECT_EQ(r1.error().message, "talosconfig: context name is empty (want the cluster name)");
  auto r2 = GenerateTalosconfig(GeneratedBundle(), {"c", {}, {}, "os:admin"}, clock);
  EXPECT_EQ(r2.error().message,
            "talosconfig: no endpoints (want at least one control-plane address)");
  auto r3 = GenerateTalosconfig(GeneratedBundle(), {"c", {"a"}, {}, "os:root"}, clock);
  EXPECT_EQ(r3.error().message,
            "talosconfig: role \"os:root\" is not one of os:admin, os:operator, os:reader");
}

}  // namespace
}  // namespace ironboot::talos
