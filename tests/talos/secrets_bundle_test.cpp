#include "talos/secrets_bundle.h"

#include <gtest/gtest.h>

#include <regex>

#include "tests/talos/secrets_fixture.h"
#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

using testing::GeneratedBundle;
using testing::TalosTestdata;

// talosctl's own secrets.yaml loads, with the PEM decoded and the os key in Talos's header.
TEST(SecretsBundle, LoadsTalosctlBundle) {
  auto b = LoadSecretsBundleFile(TalosTestdata("generate/secrets/testdata/secrets.yaml"));
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->bootstrap_token, "2psnp2.lry8e9gycdix3bpa");
  EXPECT_EQ(b->trustd_token, "oamejv.9tk1nhuwnlc2nghf");
  EXPECT_EQ(b->cluster_id, "cgvhCbucls-WqkESDTRqykFgb4hROI4cBpgB0YJLLtM=");
  EXPECT_TRUE(b->os.key.starts_with("-----BEGIN ED25519 PRIVATE KEY-----"));
  EXPECT_TRUE(b->etcd.crt.starts_with("-----BEGIN CERTIFICATE-----"));
}

// Saving a loaded talosctl bundle gives back the same bytes.
TEST(SecretsBundle, TalosctlBundleRoundTripsByteForByte) {
  std::string path = TalosTestdata("generate/secrets/testdata/secrets.yaml");
  auto b = LoadSecretsBundleFile(path);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(SaveSecretsBundle(*b), testutil::ReadFile(path));
}

// invalid-secrets.yaml is rejected with every problem named by field, no secret value shown.
TEST(SecretsBundle, InvalidBundleNamesEveryProblem) {
  std::string path = TalosTestdata("generate/secrets/testdata/invalid-secrets.yaml");
  auto b = LoadSecretsBundleFile(path);
  ASSERT_FALSE(b.has_value());
  const std::string& m = b.error().message;
  EXPECT_NE(m.find(path + ": invalid secrets bundle:"), std::string::npos) << m;
  for (const char* want :
       {"cluster.secret: missing", "secrets.secretboxencryptionsecret: missing",
        "trustdinfo.token: missing", "certs.etcd.key: missing", "certs.k8saggregator.crt: missing",
        "certs.os.crt: missing", "certs.os.key: not a PEM private key OpenSSL can read"}) {
    EXPECT_NE(m.find(want), std::string::npos) << want << "\n" << m;
  }
  EXPECT_EQ(m.find("cgvhCbucls"), std::string::npos) << "cluster id leaked";
  EXPECT_EQ(m.find("2psnp2"), std::string::npos) << "token leaked";
  EXPECT_EQ(m.find("LS0t"), std::string::npos) << "PEM leaked";
}

std::string Mutate(const std::string& yaml, const std::string& line_prefix,
                   const std::string& new_value) {
  std::regex re("(" + line_prefix + ")[^\n]*");
  return std::regex_replace(yaml, re, "$1" + new_value, std::regex_constants::format_first_only);
}

// Each format rule rejects a bad value with the field and the expectation named.
TEST(SecretsBundle, FormatErrors) {
  std::string good = SaveSecretsBundle(GeneratedBundle());
  struct Case {
    std::string prefix, value, want;
  } cases[] = {
      {"    id: ", "c2hvcnQ=", "cluster.id: decodes to 5 bytes (want base64 of 32 random bytes)"},
      {"    secret: ", "not*base64", "cluster.secret: not base64"},
      {"    bootstraptoken: ", "ABCDEF.0123456789abcdef", "secrets.bootstraptoken: not a token"},
      {"    token: ", "abcdef0123456789abcdef", "trustdinfo.token: not a token"},
      {"        crt: ", Base64Encode("hello"), "certs.etcd.crt: not a PEM certificate"},
      {"    os:\n        crt: ", Base64Encode(GeneratedBundle().etcd.crt),
       "certs.os.crt: is ECDSA P-256 (want Ed25519)"},
      {"    k8sserviceaccount:\n        key: ", Base64Encode(GeneratedBundle().os.key),
       "certs.k8sserviceaccount.key: is Ed25519 (want RSA or ECDSA P-256)"},
      {"    k8s:\n        crt: [^\n]*\n        key: ", Base64Encode(GeneratedBundle().etcd.key),
       "certs.k8s: the key does not belong to the certificate"},
  };
  for (const auto& c : cases) {
    std::string bad = Mutate(good, c.prefix, c.value);
    ASSERT_NE(bad, good) << c.prefix;
    auto b = LoadSecretsBundle(bad, "s.yaml");
    ASSERT_FALSE(b.has_value()) << c.want;
    EXPECT_NE(b.error().message.find(c.want), std::string::npos) << b.error().message;
  }
  auto not_map = LoadSecretsBundle("- a\n", "s.yaml");
  ASSERT_FALSE(not_map.has_value());
  EXPECT_NE(not_map.error().message.find("s.yaml: not a secrets bundle"), std::string::npos);
  auto missing = LoadSecretsBundleFile("/nonexistent/secrets.yaml");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "cannot read secrets bundle /nonexistent/secrets.yaml");
}

// A generated bundle has the key types, token formats and lifetimes of FACTS.md.
TEST(SecretsBundle, GeneratedBundleFormats) {
  const SecretsBundle& b = GeneratedBundle();
  std::regex token("[a-z0-9]{6}\\.[a-z0-9]{16}");
  EXPECT_TRUE(std::regex_match(b.bootstrap_token, token)) << "bootstrap token format";
  EXPECT_TRUE(std::regex_match(b.trustd_token, token)) << "trustd token format";
  EXPECT_NE(b.bootstrap_token, b.trustd_token);
  EXPECT_EQ(Base64Decode(b.cluster_id)->size(), 32u);
  EXPECT_EQ(b.cluster_id.find_first_of("+/"), std::string::npos) << "cluster id is base64url";
  EXPECT_EQ(Base64Decode(b.cluster_secret)->size(), 32u);
  EXPECT_EQ(Base64Decode(b.secretbox_encryption_secret)->size(), 32u);
  EXPECT_TRUE(b.os.key.starts_with("-----BEGIN ED25519 PRIVATE KEY-----\n"));
  EXPECT_EQ(*PrivateKeyType(b.k8s_service_account_key, "sa"), KeyType::kRsa);
  for (const CertAndKey* ca : {&b.etcd, &b.k8s, &b.k8s_aggregator, &b.os}) {
    auto info = InspectCertificate(ca->crt, "ca");
    ASSERT_TRUE(info.has_value());
    EXPECT_TRUE(info->is_ca);
    EXPECT_EQ(info->not_after - info->not_before, std::chrono::hours(24 * 3650));
  }
  EXPECT_EQ(InspectCertificate(b.os.crt, "os")->key_type, KeyType::kEd25519);
  EXPECT_EQ(InspectCertificate(b.etcd.crt, "etcd")->key_type, KeyType::kEcdsaP256);
  EXPECT_EQ(InspectCertificate(b.k8s.crt, "k8s")->key_type, KeyType::kEcdsaP256);
  EXPECT_EQ(InspectCertificate(b.k8s_aggregator.crt, "agg")->key_type, KeyType::kEcdsaP256);
}

// The service-account key is RSA 4096 as openssl sees it.
TEST(SecretsBundle, ServiceAccountKeyIsRsa4096) {
  testutil::TempDir dir;
  testutil::WriteFile(dir.path() / "sa.pem", GeneratedBundle().k8s_service_account_key);
  auto r = testutil::Run(
      {"openssl", "pkey", "-noout", "-text", "-in", (dir.path() / "sa.pem").string()});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("4096 bit"), std::string::npos) << r.output.substr(0, 80);
}

// gen -> save -> load -> save is byte-identical, and the loaded bundle equals the generated one.
TEST(SecretsBundle, GeneratedRoundTrip) {
  std::string saved = SaveSecretsBundle(GeneratedBundle());
  auto loaded = LoadSecretsBundle(saved, "gen.yaml");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(SaveSecretsBundle(*loaded), saved);
  EXPECT_EQ(loaded->os.key, GeneratedBundle().os.key);
  EXPECT_EQ(loaded->k8s_service_account_key, GeneratedBundle().k8s_service_account_key);
}

}  // namespace
}  // namespace ironboot::talos
