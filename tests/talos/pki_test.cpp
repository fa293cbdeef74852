#include "talos/pki.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

// Base64 decodes standard and URL-safe text, with or without padding, and rejects junk.
TEST(Pki, Base64RoundTripAndVariants) {
  std::string data = "\xfb\xff\x00hello";
  data.push_back('\0');
  std::string b64 = Base64Encode(data);
  EXPECT_EQ(*Base64Decode(b64), data);
  std::string url = b64;
  for (char& c : url) {
    c = c == '+' ? '-' : (c == '/' ? '_' : c);
  }
  EXPECT_EQ(*Base64Decode(url), data);
  EXPECT_EQ(*Base64Decode("aGk"), "hi");
  EXPECT_FALSE(Base64Decode("a$b=").has_value());
  EXPECT_FALSE(Base64Decode("abcde").has_value());
}

// Generated keys have the requested type; Ed25519 is written with Talos's PEM header.
TEST(Pki, GeneratesKeysOfEachType) {
  auto ed = GenerateKey(KeyType::kEd25519);
  ASSERT_TRUE(ed.has_value());
  EXPECT_TRUE(ed->starts_with("-----BEGIN ED25519 PRIVATE KEY-----\n")) << "header";
  EXPECT_EQ(*PrivateKeyType(*ed, "k"), KeyType::kEd25519);
  auto ec = GenerateKey(KeyType::kEcdsaP256);
  ASSERT_TRUE(ec.has_value());
  EXPECT_TRUE(ec->starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
  EXPECT_EQ(*PrivateKeyType(*ec, "k"), KeyType::kEcdsaP256);
  auto rsa = GenerateKey(KeyType::kRsa, 1024);
  ASSERT_TRUE(rsa.has_value());
  EXPECT_TRUE(rsa->starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
  EXPECT_EQ(*PrivateKeyType(*rsa, "k"), KeyType::kRsa);
}

// A CA is self-signed, marked CA, valid for the requested time from the clock's now.
TEST(Pki, CaCertificateFields) {
  FakeClock clock;
  CertOptions o;
  o.organization = "etcd";
  o.validity = std::chrono::hours(24 * 3650);
  auto ca = GenerateCa(KeyType::kEcdsaP256, o, clock);
  ASSERT_TRUE(ca.has_value()) << ca.error().message;
  auto info = InspectCertificate(ca->crt, "ca");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->subject, "O=etcd");
  EXPECT_EQ(info->issuer, "O=etcd");
  EXPECT_TRUE(info->is_ca);
  EXPECT_EQ(info->key_type, KeyType::kEcdsaP256);
  auto now = std::chrono::floor<std::chrono::seconds>(clock.Now());
  EXPECT_EQ(info->not_before, now);
  EXPECT_EQ(info->not_after, now + std::chrono::hours(24 * 3650));
  EXPECT_TRUE(*CertificateMatchesKey(ca->crt, ca->key, "ca"));
}

// An issued Ed25519 client certificate passes `openssl verify` against its CA and not another.
TEST(Pki, IssuedCertificateVerifiesWithOpensslCli) {
  SystemClock clock;
  CertOptions o;
  o.organization = "talos";
  o.validity = std::chrono::hours(24 * 3650);
  auto ca = GenerateCa(KeyType::kEd25519, o, clock);
  auto other = GenerateCa(KeyType::kEd25519, o, clock);
  ASSERT_TRUE(ca && other);
  CertOptions c;
  c.organization = "os:admin";
  c.validity = std::chrono::hours(24 * 365);
  c.client_auth = true;
  auto client = IssueCertificate(*ca, c, clock);
  ASSERT_TRUE(client.has_value()) << client.error().message;
  testutil::TempDir dir;
  testutil::WriteFile(dir.path() / "ca.pem", ca->crt);
  testutil::WriteFile(dir.path() / "other.pem", other->crt);
  testutil::WriteFile(dir.path() / "client.pem", client->crt);
  auto ok = testutil::Run({"openssl", "verify", "-purpose", "sslclient", "-CAfile",
                           (dir.path() / "ca.pem").string(), (dir.path() / "client.pem").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  auto bad = testutil::Run({"openssl", "verify", "-CAfile", (dir.path() / "other.pem").string(),
                            (dir.path() / "client.pem").string()});
  EXPECT_NE(bad.exit_code, 0) << bad.output;
}

// A serving certificate with the node's IP and name as subject alt names
// verifies for that IP and name (openssl verify -verify_ip / -verify_hostname)
// and not for another address; a bad address is an error naming the field.
TEST(Pki, IssuedCertificateCarriesIpAndDnsNames) {
  SystemClock clock;
  CertOptions o;
  o.organization = "talos";
  o.validity = std::chrono::hours(24 * 3650);
  auto ca = GenerateCa(KeyType::kEcdsaP256, o, clock);
  ASSERT_TRUE(ca.has_value()) << ca.error().message;
  CertOptions s;
  s.common_name = "cp-1";
  s.validity = std::chrono::hours(24 * 365);
  s.server_auth = true;
  s.ip_addresses = {"10.0.4.101", "fd00::101"};
  s.dns_names = {"cp-1"};
  auto server = IssueCertificate(*ca, s, clock);
  ASSERT_TRUE(server.has_value()) << server.error().message;
  testutil::TempDir dir;
  testutil::WriteFile(dir.path() / "ca.pem", ca->crt);
  testutil::WriteFile(dir.path() / "server.pem", server->crt);
  auto verify = [&](const std::string& flag, const std::string& value) {
    return testutil::Run({"openssl", "verify", "-purpose", "sslserver", flag, value, "-CAfile",
                          (dir.path() / "ca.pem").string(), (dir.path() / "server.pem").string()});
  };
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"-verify_ip", "10.0.4.101"}, {"-verify_ip", "fd00::101"}, {"-verify_hostname", "cp-1"}}) {
    auto ok = verify(flag, value);
    EXPECT_EQ(ok.exit_code, 0) << value << ": " << ok.output;
  }
  auto wrong = verify("-verify_ip", "10.0.4.102");
  EXPECT_NE(wrong.exit_code, 0) << wrong.output;

  s.ip_addresses = {"10.0.4.300"};
  auto bad = IssueCertificate(*ca, s, clock);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message,
            "certificate IP address \"10.0.4.300\": want an IPv4 or IPv6 address");
  s.ip_addresses = {"10.0.4.101"};
  s.dns_names = {"cp-1,DNS:evil.example"};
  auto smuggled = IssueCertificate(*ca, s, clock);
  ASSERT_FALSE(smuggled.has_value());
  EXPECT_EQ(smuggled.error().message,
            "certificate DNS name \"cp-1,DNS:evil.example\": want letters, digits, '-' and '.'");
}

// Unparseable PEM is an error naming the field, not echoing the input.
TEST(Pki, BadPemNamesTheField) {
  auto r = PrivateKeyType("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
                          "certs.os.key");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "certs.os.key: not a PEM private key OpenSSL can read");
  auto c = CertificateKeyType("junk", "certs.os.crt");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "certs.os.crt: not a PEM certificate OpenSSL can read");
}

}  // namespace
}  // namespace ironboot::talos
