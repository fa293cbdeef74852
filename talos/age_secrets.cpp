#include "talos/age_secrets.h"

#include <openssl/crypto.h>

#include <fstream>
#include <sstream>

#include "talos/age.h"

namespace ironboot::talos {

namespace {

constexpr std::string_view kSource = "secrets.yaml.age";

// Wipes a secret buffer when it goes out of scope.
struct Wipe {
  std::string& s;
  ~Wipe() {
    if (!s.empty()) {
      OPENSSL_cleanse(s.data(), s.size());
    }
  }
};

}  // namespace

Result<SecretsBundle> LoadEncryptedSecretsBundle(std::string_view age_bytes,
                                                 const std::filesystem::path& identity_file) {
  std::ifstream in(identity_file, std::ios::binary);
  if (!in) {
    return Fail(ErrorCode::kNotFound,
                std::string(kSource) + ": cannot read age identity file " + identity_file.string());
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string identity_text = buffer.str();
  Wipe wipe_identity{identity_text};
  auto yaml = AgeDecrypt(age_bytes, identity_text);
  if (!yaml) {
    return std::unexpected(yaml.error().Wrap(std::string(kSource) + " (identity file " +
                                             identity_file.string() + ")"));
  }
  Wipe wipe_yaml{*yaml};
  return LoadSecretsBundle(*yaml, kSource);
}

Result<std::string> EncryptSecretsBundle(const SecretsBundle& bundle,
                                         const std::vector<std::string>& recipients) {
  std::string yaml = SaveSecretsBundle(bundle);
  Wipe wipe_yaml{yaml};
  return AgeEncrypt(yaml, recipients);
}

}  // namespace ironboot::talos
