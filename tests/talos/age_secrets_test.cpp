#include "talos/age_secrets.h"

#include <gtest/gtest.h>

#include "talos/age.h"
#include "tests/talos/secrets_fixture.h"
#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

using testing::TalosTestdata;
using testutil::ReadFile;
using testutil::TempDir;
using testutil::WriteFile;

// talosctl's secrets.yaml, encrypted by the age CLI to an age-keygen key, loads in memory.
TEST(AgeSecrets, LoadsCliEncryptedTalosctlBundle) {
  TempDir dir;
  auto keygen = testutil::Run({"age-keygen", "-o", (dir / "key.txt").string()});
  ASSERT_EQ(keygen.exit_code, 0) << keygen.output;
  auto recipient = testutil::Run({"age-keygen", "-y", (dir / "key.txt").string()});
  ASSERT_EQ(recipient.exit_code, 0);
  recipient.output.pop_back();
  auto enc =
      testutil::Run({"age", "-a", "-r", recipient.output, "-o", (dir / "secrets.yaml.age").string(),
                     TalosTestdata("generate/secrets/testdata/secrets.yaml")});
  ASSERT_EQ(enc.exit_code, 0) << enc.output;
  auto b = LoadEncryptedSecretsBundle(ReadFile(dir / "secrets.yaml.age"), dir / "key.txt");
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->bootstrap_token, "2psnp2.lry8e9gycdix3bpa");
  EXPECT_TRUE(b->os.key.starts_with("-----BEGIN ED25519 PRIVATE KEY-----"));
}

// A bundle we encrypt round-trips, and the age CLI decrypts it to SaveSecretsBundle's bytes.
TEST(AgeSecrets, EncryptedBundleRoundTripsAndCliReadsIt) {
  TempDir dir;
  auto id = AgeGenerateIdentity();
  ASSERT_TRUE(id.has_value());
  WriteFile(dir / "key.txt", id->secret_key + "\n");
  auto bundle = LoadSecretsBundleFile(TalosTestdata("generate/secrets/testdata/secrets.yaml"));
  ASSERT_TRUE(bundle.has_value());
  auto ct = EncryptSecretsBundle(*bundle, {id->recipient});
  ASSERT_TRUE(ct.has_value()) << ct.error().message;
  auto back = LoadEncryptedSecretsBundle(*ct, dir / "key.txt");
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(SaveSecretsBundle(*back), SaveSecretsBundle(*bundle));
  WriteFile(dir / "secrets.yaml.age", *ct);
  auto dec = testutil::Run(
      {"age", "-d", "-i", (dir / "key.txt").string(), (dir / "secrets.yaml.age").string()});
  ASSERT_EQ(dec.exit_code, 0) << dec.output;
  EXPECT_EQ(dec.output, SaveSecretsBundle(*bundle));
}

// Missing identity file, wrong identity and an invalid bundle inside each give a clear
// error naming the file, with no secret in it.
TEST(AgeSecrets, ErrorsNameTheProblemWithoutSecrets) {
  TempDir dir;
  auto id = AgeGenerateIdentity();
  auto other = AgeGenerateIdentity();
  WriteFile(dir / "key.txt", id->secret_key + "\n");
  WriteFile(dir / "other.txt", other->secret_key + "\n");
  auto bundle = LoadSecretsBundleFile(TalosTestdata("generate/secrets/testdata/secrets.yaml"));
  auto ct = EncryptSecretsBundle(*bundle, {id->recipient});
  ASSERT_TRUE(ct.has_value());

  auto missing = LoadEncryptedSecretsBundle(*ct, dir / "nope.txt");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("cannot read age identity file"), std::string::npos);
  EXPECT_NE(missing.error().message.find("nope.txt"), std::string::npos);

  auto wrong = LoadEncryptedSecretsBundle(*ct, dir / "other.txt");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, ErrorCode::kUnauthorized);
  EXPECT_NE(wrong.error().message.find("secrets.yaml.age"), std::string::npos);
  EXPECT_NE(wrong.error().message.find("no identity matched"), std::string::npos);
  EXPECT_EQ(wrong.error().message.find(other->secret_key), std::string::npos);

  auto invalid = AgeEncrypt(
      ReadFile(TalosTestdata("generate/secrets/testdata/invalid-secrets.yaml")), {id->recipient});
  auto bad = LoadEncryptedSecretsBundle(*invalid, dir / "key.txt");
  ASSERT_FALSE(bad.has_value());
  EXPECT_TRUE(bad.error().message.starts_with("secrets.yaml.age: ")) << bad.error().message;
  for (const auto& secret : SecretStrings(*bundle)) {
    EXPECT_EQ(wrong.error().message.find(secret), std::string::npos);
  }
}

}  // namespace
}  // namespace ironboot::talos
