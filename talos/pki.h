#pragma once
// talos/: the PKI Talos clusters use, natively with OpenSSL 3: CA and client
// certificates, key generation, PEM parsing and base64. Key material is only
// ever returned to the caller; errors name what failed, never its content.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/error.h"

namespace ironboot::talos {

enum class KeyType { kEd25519, kEcdsaP256, kRsa, kOther };
const char* KeyTypeName(KeyType type);

// A certificate and its private key, both PEM text.
struct CertAndKey {
  std::string crt;
  std::string key;
};

// Standard (with padding) base64 of `data`, no line breaks.
std::string Base64Encode(std::string_view data);
// Decodes standard or URL-safe base64 (padding optional). Error: not base64.
Result<std::string> Base64Decode(std::string_view text);
// `n` bytes from OpenSSL's CSPRNG.
Result<std::string> RandomBytes(size_t n);

// Talos writes Ed25519 PKCS#8 keys under "ED25519 PRIVATE KEY" instead of
// "PRIVATE KEY"; these convert between the two spellings.
std::string ToTalosKeyPem(std::string_view pkcs8_pem);
std::string ToOpenSslKeyPem(std::string_view talos_pem);

// What a PEM holds, checked by OpenSSL. `what` names the field in errors.
Result<KeyType> PrivateKeyType(std::string_view pem, std::string_view what);
Result<KeyType> CertificateKeyType(std::string_view pem, std::string_view what);
// Whether the certificate's public key belongs to the private key.
Result<bool> CertificateMatchesKey(std::string_view crt_pem, std::string_view key_pem,
                                   std::string_view what);

// New private keys, PEM (Ed25519 in Talos's spelling; ECDSA as "EC PRIVATE
// KEY" and RSA as "RSA PRIVATE KEY", as Go's x509 writes them).
Result<std::string> GenerateKey(KeyType type, int rsa_bits = 4096);

struct CertOptions {
  std::string organization;  // empty: no subject at all
  std::string common_name;
  std::chrono::seconds validity{};
  bool is_ca = false;
  bool client_auth = false;
  bool server_auth = false;
  // Subject alt names (Talos's apid certificate carries the node's IPs and
  // names, and clients verify the address they dialled against them).
  std::vector<std::string> ip_addresses;
  std::vector<std::string> dns_names;
};

// A self-signed CA of `type`, valid from now for `options.validity`.
Result<CertAndKey> GenerateCa(KeyType type, const CertOptions& options, const Clock& clock);

// A certificate for a fresh key of the CA's key type, signed by `ca`.
Result<CertAndKey> IssueCertificate(const CertAndKey& ca, const CertOptions& options,
                                    const Clock& clock);

// Human-readable fields of a certificate, for tests and `status` output.
struct CertificateInfo {
  std::string subject;  // RFC 2253, e.g. "O=os:admin"
  std::string issuer;
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  bool is_ca = false;
  bool client_auth = false;
  KeyType key_type = KeyType::kOther;
};
Result<CertificateInfo> InspectCertificate(std::string_view pem, std::string_view what);

}  // namespace ironboot::talos
