#include "talos/age.h"

#include <gtest/gtest.h>

#include <regex>

#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

using testutil::ReadFile;
using testutil::TempDir;
using testutil::WriteFile;

// Deterministic non-trivial bytes (all 256 values) of length n.
std::string Pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245 + 12345;
    s[i] = static_cast<char>(x >> 16);
  }
  return s;
}

struct CliKey {
  std::string file_text;  // age-keygen's output (comments + secret key)
  std::string recipient;
};

CliKey AgeKeygen(const TempDir& dir, const std::string& name) {
  auto path = dir / name;
  auto r = testutil::Run({"age-keygen", "-o", path.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  CliKey key{ReadFile(path), ""};
  std::smatch m;
  std::regex re("# public key: (age1[a-z0-9]+)");
  EXPECT_TRUE(std::regex_search(key.file_text, m, re)) << key.file_text;
  key.recipient = m[1];
  return key;
}

// Encrypts with the age CLI to `recipients`; returns the file's bytes.
std::string CliEncrypt(const TempDir& dir, const std::string& plaintext,
                       const std::vector<std::string>& recipients, bool armor = false) {
  WriteFile(dir / "in", plaintext);
  std::vector<std::string> argv = {"age"};
  if (armor) {
    argv.push_back("-a");
  }
  for (const auto& r : recipients) {
    argv.push_back("-r");
    argv.push_back(r);
  }
  argv.insert(argv.end(), {"-o", (dir / "out.age").string(), (dir / "in").string()});
  auto r = testutil::Run(argv);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return ReadFile(dir / "out.age");
}

// Decrypts with `age -d -i`; returns exit code and plaintext (or error output).
testutil::CommandResult CliDecrypt(const TempDir& dir, const std::string& ciphertext,
                                   const std::string& identity_text) {
  WriteFile(dir / "ours.age", ciphertext);
  WriteFile(dir / "key.txt", identity_text);
  auto r = testutil::Run({"age", "-d", "-i", (dir / "key.txt").string(), "-o",
                          (dir / "dec").string(), (dir / "ours.age").string()});
  if (r.exit_code == 0) {
    r.output = ReadFile(dir / "dec");
  }
  return r;
}

// A file the age CLI encrypted to an age-keygen key decrypts with ours.
TEST(Age, DecryptsCliFileWithCliKey) {
  TempDir dir;
  auto key = AgeKeygen(dir, "key.txt");
  std::string plaintext = "cluster:\n  secret: hunter2\n";
  auto ct = CliEncrypt(dir, plaintext, {key.recipient});
  auto pt = AgeDecrypt(ct, key.file_text);
  ASSERT_TRUE(pt.has_value()) << pt.error().message;
  EXPECT_EQ(*pt, plaintext);
}

// An ASCII-armored file from `age -a` decrypts with ours.
TEST(Age, DecryptsCliArmoredFile) {
  TempDir dir;
  auto key = AgeKeygen(dir, "key.txt");
  std::string plaintext = Pattern(1000);
  auto ct = CliEncrypt(dir, plaintext, {key.recipient}, /*armor=*/true);
  ASSERT_TRUE(ct.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
  auto pt = AgeDecrypt(ct, key.file_text);
  ASSERT_TRUE(pt.has_value()) << pt.error().message;
  EXPECT_EQ(*pt, plaintext);
}

// Multi-chunk (>64 KiB), exactly 64 KiB and empty CLI files decrypt with ours, byte for byte.
TEST(Age, DecryptsCliFilesAtChunkBoundaries) {
  TempDir dir;
  auto key = AgeKeygen(dir, "key.txt");
  for (size_t n : {size_t{0}, size_t{1}, size_t{65535}, size_t{65536}, size_t{65537},
                   size_t{3 * 65536}, size_t{200000}}) {
    std::string plaintext = Pattern(n);
    auto ct = CliEncrypt(dir, plaintext, {key.recipient});
    auto pt = AgeDecrypt(ct, key.file_text);
    ASSERT_TRUE(pt.has_value()) << "size " << n << ": " << pt.error().message;
    EXPECT_EQ(*pt, plaintext) << "size " << n;
  }
}

// Our files (any size, incl. chunk boundaries) decrypt with `age -d`, using an age-keygen key.
TEST(Age, CliDecryptsOurFilesAtChunkBoundaries) {
  TempDir dir;
  auto key = AgeKeygen(dir, "key.txt");
  for (size_t n :
       {size_t{0}, size_t{10}, size_t{65536}, size_t{65537}, size_t{2 * 65536}, size_t{200000}}) {
    std::string plaintext = Pattern(n);
    auto ct = AgeEncrypt(plaintext, {key.recipient});
    ASSERT_TRUE(ct.has_value()) << ct.error().message;
    auto r = CliDecrypt(dir, *ct, key.file_text);
    ASSERT_EQ(r.exit_code, 0) << "size " << n << ": " << r.output;
    EXPECT_EQ(r.output, plaintext) << "size " << n;
  }
}

// A key from AgeGenerateIdentity works with the CLI both ways (age -r ours, age -d -i ours).
TEST(Age, OurKeysWorkWithCli) {
  TempDir dir;
  auto id = AgeGenerateIdentity();
  ASSERT_TRUE(id.has_value()) << id.error().message;
  EXPECT_TRUE(id->secret_key.starts_with("AGE-SECRET-KEY-1"));
  EXPECT_TRUE(id->recipient.starts_with("age1"));
  EXPECT_EQ(id->recipient.size(), 62u);
  EXPECT_EQ(id->secret_key.size(), 74u);
  // age-keygen -y derives the same recipient from our secret key.
  WriteFile(dir / "ours.txt", id->secret_key + "\n");
  auto y = testutil::Run({"age-keygen", "-y", (dir / "ours.txt").string()});
  ASSERT_EQ(y.exit_code, 0) << y.output;
  EXPECT_EQ(y.output, id->recipient + "\n");
  EXPECT_EQ(*AgeRecipientOf(id->secret_key), id->recipient);

  std::string plaintext = "from the CLI to our key";
  auto ct = CliEncrypt(dir, plaintext, {id->recipient});
  auto pt = AgeDecrypt(ct, id->secret_key + "\n");
  ASSERT_TRUE(pt.has_value()) << pt.error().message;
  EXPECT_EQ(*pt, plaintext);

  auto ours = AgeEncrypt("from us to our key", {id->recipient});
  ASSERT_TRUE(ours.has_value());
  auto r = CliDecrypt(dir, *ours, id->secret_key + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "from us to our key");
}

// A file to several recipients opens with each one's key, ours and the CLI's, both ways.
TEST(Age, MultipleRecipients) {
  TempDir dir;
  auto a = AgeKeygen(dir, "a.txt");
  auto b = AgeKeygen(dir, "b.txt");
  auto c = AgeGenerateIdentity();
  ASSERT_TRUE(c.has_value());
  std::vector<std::string> recipients = {a.recipient, b.recipient, c->recipient};

  auto ours = AgeEncrypt("shared", recipients);
  ASSERT_TRUE(ours.has_value());
  for (const auto& key : {a.file_text, b.file_text, c->secret_key}) {
    auto pt = AgeDecrypt(*ours, key);
    ASSERT_TRUE(pt.has_value()) << pt.error().message;
    EXPECT_EQ(*pt, "shared");
    auto r = CliDecrypt(dir, *ours, key + "\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "shared");
  }
  auto cli = CliEncrypt(dir, "shared by cli", recipients);
  for (const auto& key : {a.file_text, b.file_text, c->secret_key}) {
    auto pt = AgeDecrypt(cli, key);
    ASSERT_TRUE(pt.has_value()) << pt.error().message;
    EXPECT_EQ(*pt, "shared by cli");
  }
  // An identity file holding several keys, the matching one last, also works.
  auto other = AgeGenerateIdentity();
  auto pt = AgeDecrypt(cli, "# two keys\n" + other->secret_key + "\n\n" + b.file_text);
  ASSERT_TRUE(pt.has_value()) << pt.error().message;
}

// A file the identity cannot open fails with "no identity matched", naming no key.
TEST(Age, WrongIdentityIsClearError) {
  TempDir dir;
  auto key = AgeKeygen(dir, "key.txt");
  auto wrong = AgeGenerateIdentity();
  auto ct = CliEncrypt(dir, "secret", {key.recipient});
  auto pt = AgeDecrypt(ct, wrong->secret_key);
  ASSERT_FALSE(pt.has_value());
  EXPECT_EQ(pt.error().code, ErrorCode::kUnauthorized);
  EXPECT_NE(pt.error().message.find("no identity matched"), std::string::npos)
      << pt.error().message;
  EXPECT_EQ(pt.error().message.find(wrong->secret_key), std::string::npos);
}

// Stanzas of other types (scrypt, plugins, grease) are skipped, and the error says so.
TEST(Age, OtherStanzaTypesAreSkipped) {
  TempDir dir;
  auto key = AgeKeygen(dir, "key.txt");
  // A passphrase file has only an scrypt stanza (age -p needs a terminal, so build one;
  // matching fails before the MAC is checked, so the MAC value does not matter).
  std::string scrypt_file = "age-encryption.org/v1\n-> scrypt c2FsdHNhbHRzYWx0c2FsdA 18\n" +
                            std::string(43, 'A') + "\n--- " + std::string(43, 'A') + "\n" +
                            Pattern(40);
  auto pt = AgeDecrypt(scrypt_file, key.file_text);
  ASSERT_FALSE(pt.has_value());
  EXPECT_EQ(pt.error().code, ErrorCode::kUnauthorized);
  EXPECT_NE(pt.error().message.find("no identity matched"), std::string::npos)
      << pt.error().message;
  EXPECT_NE(pt.error().message.find("0 X25519 stanzas, 1 other stanzas skipped"), std::string::npos)
      << pt.error().message;
  // CLI files carry a random grease stanza; decrypting many of them exercises the skip.
  for (int i = 0; i < 10; ++i) {
    auto ct = CliEncrypt(dir, "grease", {key.recipient});
    auto pt = AgeDecrypt(ct, key.file_text);
    ASSERT_TRUE(pt.has_value()) << pt.error().message;
  }
}

// A changed header byte (here: the recipient share) is caught by the header MAC or the
// stanza; a changed MAC line is a MAC failure.
TEST(Age, TamperedHeaderFailsMac) {
  TempDir dir;
  auto key = AgeKeygen(dir, "key.txt");
  auto ours = AgeEncrypt("payload", {key.recipient});
  ASSERT_TRUE(ours.has_value());
  // Add a grease stanza the MAC does not cover: the header MAC fails.
  std::string ct = *ours;
  size_t dashes = ct.find("\n---") + 1;
  ct.insert(dashes, "-> grease-stanza x\nYWJj\n");
  auto pt = AgeDecrypt(ct, key.file_text);
  ASSERT_FALSE(pt.has_value());
  EXPECT_NE(pt.error().message.find("header MAC mismatch"), std::string::npos)
      << pt.error().message;
  // Flip a bit in the MAC itself.
  ct = *ours;
  size_t mac_pos = ct.find("\n--- ") + 5;
  ct[mac_pos] = ct[mac_pos] == 'A' ? 'B' : 'A';
  pt = AgeDecrypt(ct, key.file_text);
  ASSERT_FALSE(pt.has_value());
  EXPECT_NE(pt.error().message.find("header MAC mismatch"), std::string::npos)
      << pt.error().message;
  // The CLI agrees the same file is bad.
  EXPECT_NE(CliDecrypt(dir, ct, key.file_text).exit_code, 0);
}

// A flipped payload byte, a truncated file, and a dropped final chunk all fail chunk
// authentication with the chunk named.
TEST(Age, TamperedPayloadFailsChunkAuth) {
  TempDir dir;
  auto key = AgeKeygen(dir, "key.txt");
  std::string plaintext = Pattern(3 * 65536);
  auto ct = CliEncrypt(dir, plaintext, {key.recipient});
  size_t header_end = ct.find("\n--- ");
  header_end = ct.find('\n', header_end + 1) + 1;
  size_t payload_start = header_end + 16;

  std::string flipped = ct;
  flipped[payload_start + 65552 + 100] ^= 1;  // inside chunk 1
  auto pt = AgeDecrypt(flipped, key.file_text);
  ASSERT_FALSE(pt.has_value());
  EXPECT_NE(pt.error().message.find("payload chunk 1 failed authentication"), std::string::npos)
      << pt.error().message;

  // Truncated exactly at a chunk boundary: chunk 1 is not marked last.
  std::string truncated = ct.substr(0, payload_start + 2 * 65552);
  pt = AgeDecrypt(truncated, key.file_text);
  ASSERT_FALSE(pt.has_value());
  EXPECT_NE(pt.error().message.find("payload chunk 1 failed authentication"), std::string::npos)
      << pt.error().message;

  // No payload at all.
  pt = AgeDecrypt(ct.substr(0, header_end + 16), key.file_text);
  ASSERT_FALSE(pt.has_value());
  EXPECT_NE(pt.error().message.find("payload truncated"), std::string::npos) << pt.error().message;
}

// Bad Bech32 checksums in a recipient or an identity are rejected with a clear message
// that does not echo the secret key.
TEST(Age, BadBech32ChecksumIsRejected) {
  auto id = AgeGenerateIdentity();
  ASSERT_TRUE(id.has_value());
  std::string bad_recipient = id->recipient;
  bad_recipient.back() = bad_recipient.back() == 'q' ? 'p' : 'q';
  auto ct = AgeEncrypt("x", {bad_recipient});
  ASSERT_FALSE(ct.has_value());
  EXPECT_NE(ct.error().message.find("invalid Bech32 checksum"), std::string::npos)
      << ct.error().message;
  EXPECT_NE(ct.error().message.find("recipient 1"), std::string::npos) << ct.error().message;

  std::string bad_key = id->secret_key;
  bad_key[20] = bad_key[20] == 'Q' ? 'P' : 'Q';
  auto good = AgeEncrypt("x", {id->recipient});
  ASSERT_TRUE(good.has_value());
  auto pt = AgeDecrypt(*good, "# comment\n" + bad_key + "\n");
  ASSERT_FALSE(pt.has_value());
  EXPECT_EQ(pt.error().message, "age: identity file line 2: invalid Bech32 checksum");

  // Wrong kinds of strings.
  auto r = AgeEncrypt("x", {id->secret_key});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("not an X25519 recipient"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(r.error().message.find(id->secret_key), std::string::npos);
  pt = AgeDecrypt(*good, "");
  ASSERT_FALSE(pt.has_value());
  EXPECT_NE(pt.error().message.find("no AGE-SECRET-KEY-1"), std::string::npos);
  pt = AgeDecrypt(*good, id->recipient);
  ASSERT_FALSE(pt.has_value());
  EXPECT_NE(pt.error().message.find("not an X25519 identity"), std::string::npos);
  EXPECT_FALSE(AgeEncrypt("x", {}).has_value());
}

// Things that are not age files say so.
TEST(Age, MalformedFilesAreClearErrors) {
  auto id = AgeGenerateIdentity();
  auto pt = AgeDecrypt("hello world\n", id->secret_key);
  ASSERT_FALSE(pt.has_value());
  EXPECT_NE(pt.error().message.find("not an age file"), std::string::npos) << pt.error().message;
  pt = AgeDecrypt("-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n", id->secret_key);
  ASSERT_FALSE(pt.has_value());
  EXPECT_NE(pt.error().message.find("END AGE ENCRYPTED FILE"), std::string::npos)
      << pt.error().message;
  pt = AgeDecrypt("age-encryption.org/v1\n-> X25519 abc\n", id->secret_key);
  ASSERT_FALSE(pt.has_value());
  EXPECT_NE(pt.error().message.find("truncated"), std::string::npos) << pt.error().message;
}

}  // namespace
}  // namespace ironboot::talos
