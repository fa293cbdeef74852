#pragma once
// talos/: age v1 file encryption (https://age-encryption.org/v1), X25519
// recipients only, so a cluster repo can hold its secrets bundle encrypted and
// ironboot decrypts it in memory. Interoperates with the `age` CLI both ways.
// Error messages never contain key material, file keys or plaintext.

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace ironboot::talos {

// A new X25519 identity, as age-keygen prints it.
struct AgeIdentity {
  std::string secret_key;  // "AGE-SECRET-KEY-1..." (Bech32, upper case)
  std::string recipient;   // "age1..." (Bech32, lower case)
};

// Generates a new random identity.
Result<AgeIdentity> AgeGenerateIdentity();

// The recipient ("age1...") of a secret key ("AGE-SECRET-KEY-1..."); fails on
// a malformed key (bad Bech32 checksum, wrong prefix or length).
Result<std::string> AgeRecipientOf(std::string_view secret_key);

// Encrypts `plaintext` to every recipient ("age1..."; at least one) in age's
// binary format. A malformed recipient fails naming it and what is wrong.
Result<std::string> AgeEncrypt(std::string_view plaintext,
                               const std::vector<std::string>& recipients);

// Decrypts an age file (binary, or ASCII-armored "-----BEGIN AGE ENCRYPTED
// FILE-----") with the identities of `identity_file_text` (age-keygen's
// format: one AGE-SECRET-KEY-1... per line, '#' comments and blank lines
// ignored). Only X25519 stanzas are tried; others are skipped. Verifies the
// header MAC and every payload chunk; fails with kUnauthorized when no
// identity matches, kInvalid for a malformed, truncated or tampered file.
Result<std::string> AgeDecrypt(std::string_view ciphertext, std::string_view identity_file_text);

}  // namespace ironboot::talos
