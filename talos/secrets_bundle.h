#pragma once
// talos/: the cluster secrets bundle, in the YAML shape `talosctl gen secrets`
// writes: load with format checks, generate natively (OpenSSL), save.
// Error messages name the field and what was expected, never a secret value.

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/error.h"
#include "talos/pki.h"

namespace ironboot::talos {

// Every secret of a cluster. PEM fields hold PEM text (decoded from the
// bundle's base64); the Ed25519 os CA key keeps Talos's "ED25519 PRIVATE KEY".
struct SecretsBundle {
  std::string cluster_id;                   // base64url of 32 bytes
  std::string cluster_secret;               // base64 of 32 bytes
  std::string bootstrap_token;              // [a-z0-9]{6}.[a-z0-9]{16}
  std::string secretbox_encryption_secret;  // base64 of 32 bytes
  std::string trustd_token;                 // [a-z0-9]{6}.[a-z0-9]{16}
  CertAndKey etcd;                          // ECDSA P-256 CA
  CertAndKey k8s;                           // ECDSA P-256 CA
  CertAndKey k8s_aggregator;                // ECDSA P-256 CA
  std::string k8s_service_account_key;      // RSA (ECDSA in bundles older than Talos 1.6)
  CertAndKey os;                            // Ed25519 CA (the Talos API)
};

// Parses and checks a bundle; `source` (a file name) prefixes errors:
// "<source>: certs.os.crt: missing". All problems are reported, one per line.
Result<SecretsBundle> LoadSecretsBundle(std::string_view yaml, std::string_view source);
// Reads and loads the file at `path`.
Result<SecretsBundle> LoadSecretsBundleFile(const std::string& path);

// The bundle as YAML, in talosctl's key order and 4-space style. Loading the
// result gives the same bundle; saving that gives the same bytes.
std::string SaveSecretsBundle(const SecretsBundle& bundle);

// A new bundle: random tokens and secrets, CAs valid 10 years from now, an
// RSA-4096 service-account key (this takes a second or more).
Result<SecretsBundle> GenerateSecrets(const Clock& clock);

// Every secret string of the bundle, in PEM and base64 forms (for tests that
// check logs and messages never contain one).
std::vector<std::string> SecretStrings(const SecretsBundle& bundle);

}  // namespace ironboot::talos
