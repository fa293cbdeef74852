#pragma once
// talos/: the secrets bundle kept inside the cluster repo as
// `secrets.yaml.age` (age-encrypted to X25519 recipients), decrypted in
// memory with an identity file that lives outside the repo. The plaintext is
// never written to disk; errors never contain key or bundle material.

#include <filesystem>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "talos/secrets_bundle.h"

namespace ironboot::talos {

// Decrypts `age_bytes` (binary or armored age) with the identities in
// `identity_file` (age-keygen's format) and loads the bundle. Errors are
// prefixed "secrets.yaml.age: " and say whether the identity file could not
// be read, no identity matched, the file was tampered with, or which bundle
// field is wrong.
Result<SecretsBundle> LoadEncryptedSecretsBundle(std::string_view age_bytes,
                                                 const std::filesystem::path& identity_file);

// Encrypts `bundle` (as SaveSecretsBundle writes it) to `recipients`
// ("age1..."), giving the bytes of a `secrets.yaml.age` file.
Result<std::string> EncryptSecretsBundle(const SecretsBundle& bundle,
                                         const std::vector<std::string>& recipients);

}  // namespace ironboot::talos
