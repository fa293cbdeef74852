#include "talos/pki.h"

#include <arpa/inet.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <memory>

namespace ironboot::talos {

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// The first OpenSSL error's reason (no data from the input is in it).
std::string OpenSslReason() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) {
    return "unknown OpenSSL error";
  }
  const char* reason = ERR_reason_error_string(e);
  return reason ? reason : "OpenSSL error " + std::to_string(e);
}

std::unexpected<Error> OpenSslFail(std::string_view what) {
  return Fail(ErrorCode::kInternal, std::string(what) + ": " + OpenSslReason());
}

BioPtr MemBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

KeyType TypeOf(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_ED25519:
      return KeyType::kEd25519;
    case EVP_PKEY_RSA:
      return KeyType::kRsa;
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group), &len) == 1 &&
          std::string_view(group, len) == "prime256v1") {
        return KeyType::kEcdsaP256;
      }
      return KeyType::kOther;
    }
    default:
      return KeyType::kOther;
  }
}

Result<PkeyPtr> ReadKey(std::string_view pem, std::string_view what) {
  std::string text = ToOpenSslKeyPem(pem);
  BioPtr bio = MemBio(text);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalid,
                std::string(what) + ": not a PEM private key OpenSSL can read");
  }
  return key;
}

Result<X509Ptr> ReadCert(std::string_view pem, std::string_view what) {
  BioPtr bio = MemBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalid,
                std::string(what) + ": not a PEM certificate OpenSSL can read");
  }
  return cert;
}

Result<std::string> WriteKey(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  KeyType type = TypeOf(key);
  int ok = type == KeyType::kEd25519
               ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
               : PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                                      nullptr);
  if (ok != 1) {
    return OpenSslFail("encode private key");
  }
  std::string pem = BioText(bio.get());
  return type == KeyType::kEd25519 ? ToTalosKeyPem(pem) : pem;
}

Result<std::string> WriteCert(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) {
    return OpenSslFail("encode certificate");
  }
  return BioText(bio.get());
}

Result<void> AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) {
    return OpenSslFail(std::string("certificate extension ") + OBJ_nid2sn(nid));
  }
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) {
    return OpenSslFail("add certificate extension");
  }
  return {};
}

// Builds and signs a certificate for `subject_key`; `issuer` null = self-signed.
Result<std::string> MakeCertificate(EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key,
                                    const CertOptions& options, const Clock& clock) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) {
    return OpenSslFail("new certificate");
  }
  // 128-bit random positive serial, like Go's crypto/x509 users.
  auto serial_bytes = RandomBytes(16);
  if (!serial_bytes) {
    return std::unexpected(serial_bytes.error());
  }
  (*serial_bytes)[0] = static_cast<char>((*serial_bytes)[0] & 0x7f);
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial_bytes->data()),
                         static_cast<int>(serial_bytes->size()), nullptr);
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  if (serial == nullptr) {
    return OpenSslFail("certificate serial");
  }
  time_t now = std::chrono::system_clock::to_time_t(clock.Now());
  time_t until = now + static_cast<time_t>(options.validity.count());
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), now) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), until)) {
    return OpenSslFail("certificate validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!options.organization.empty() &&
      X509_NAME_add_entry_by_txt(
          name, "O", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(options.organization.c_str()), -1, -1, 0) != 1) {
    return OpenSslFail("certificate subject");
  }
  if (!options.common_name.empty() &&
      X509_NAME_add_entry_by_txt(
          name, "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(options.common_name.c_str()), -1, -1, 0) != 1) {
    return OpenSslFail("certificate subject");
  }
  X509* signer = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return OpenSslFail("certificate issuer");
  }
  std::string usage = "critical,digitalSignature";
  if (options.is_ca) {
    usage += ",keyCertSign";
  } else if (TypeOf(subject_key) == KeyType::kRsa) {
    usage += ",keyEncipherment";
  }
  std::string ext_usage;
  if (options.server_auth) {
    ext_usage = "serverAuth";
  }
  if (options.client_auth) {
    ext_usage += ext_usage.empty() ? "clientAuth" : ",clientAuth";
  }
  if (auto r = AddExtension(cert.get(), signer, NID_basic_constraints,
                            options.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
      !r) {
    return std::unexpected(r.error());
  }
  if (auto r = AddExtension(cert.get(), signer, NID_key_usage, usage.c_str()); !r) {
    return std::unexpected(r.error());
  }
  if (!ext_usage.empty()) {
    if (auto r = AddExtension(cert.get(), signer, NID_ext_key_usage, ext_usage.c_str()); !r) {
      return std::unexpected(r.error());
    }
  }
  // Checked one by one: OpenSSL reads the list as config text, where a ','
  // in a name would add names of its own.
  std::string alt_names;
  for (const auto& ip : options.ip_addresses) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip.c_str(), buf) != 1 && inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
      return Fail(ErrorCode::kInvalid,
                  "certificate IP address \"" + ip + "\": want an IPv4 or IPv6 address");
    }
    alt_names += (alt_names.empty() ? "IP:" : ",IP:") + ip;
  }
  for (const auto& dns : options.dns_names) {
    bool ok = !dns.empty() && std::all_of(dns.begin(), dns.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '.' || c == '*';
    });
    if (!ok) {
      return Fail(ErrorCode::kInvalid, "certificate DNS name \"" + dns +
                                           "\": want letters, digits, '-' and '.'");
    }
    alt_names += (alt_names.empty() ? "DNS:" : ",DNS:") + dns;
  }
  if (!alt_names.empty()) {
    if (auto r = AddExtension(cert.get(), signer, NID_subject_alt_name, alt_names.c_str()); !r) {
      return Fail(ErrorCode::kInvalid, "certificate subject alt names \"" + alt_names +
                                           "\": want IP addresses and DNS names");
    }
  }
  if (auto r = AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash"); !r) {
    return std::unexpected(r.error());
  }
  if (issuer != nullptr) {
    if (auto r = AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
        !r) {
      return std::unexpected(r.error());
    }
  }
  // Ed25519 signs the message itself: no digest.
  const EVP_MD* md = TypeOf(issuer_key) == KeyType::kEd25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), issuer_key, md) <= 0) {
    return OpenSslFail("sign certificate");
  }
  return WriteCert(cert.get());
}

std::chrono::system_clock::time_point ToTimePoint(const ASN1_TIME* t) {
  struct tm tm = {};
  ASN1_TIME_to_tm(t, &tm);
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

const char* KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kEd25519:
      return "Ed25519";
    case KeyType::kEcdsaP256:
      return "ECDSA P-256";
    case KeyType::kRsa:
      return "RSA";
    case KeyType::kOther:
      break;
  }
  return "other";
}

std::string Base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') {
      return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
      return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
      return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
      return 62;
    }
    if (c == '/' || c == '_') {
      return 63;
    }
    return -1;
  };
  while (!text.empty() && text.back() == '=') {
    text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) {
    return Fail(ErrorCode::kInvalid, "not base64 (bad length)");
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) {
      return Fail(ErrorCode::kInvalid, "not base64 (unexpected character)");
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return OpenSslFail("random bytes");
  }
  return out;
}

std::string ToTalosKeyPem(std::string_view pkcs8_pem) {
  return ReplaceAll(ReplaceAll(std::string(pkcs8_pem), "-----BEGIN PRIVATE KEY-----",
                               "-----BEGIN ED25519 PRIVATE KEY-----"),
                    "-----END PRIVATE KEY-----", "-----END ED25519 PRIVATE KEY-----");
}

std::string ToOpenSslKeyPem(std::string_view talos_pem) {
  return ReplaceAll(ReplaceAll(std::string(talos_pem), "-----BEGIN ED25519 PRIVATE KEY-----",
                               "-----BEGIN PRIVATE KEY-----"),
                    "-----END ED25519 PRIVATE KEY-----", "-----END PRIVATE KEY-----");
}

Result<KeyType> PrivateKeyType(std::string_view pem, std::string_view what) {
  auto key = ReadKey(pem, what);
  if (!key) {
    return std::unexpected(key.error());
  }
  return TypeOf(key->get());
}

Result<KeyType> CertificateKeyType(std::string_view pem, std::string_view what) {
  auto cert = ReadCert(pem, what);
  if (!cert) {
    return std::unexpected(cert.error());
  }
  EVP_PKEY* pub = X509_get0_pubkey(cert->get());
  if (pub == nullptr) {
    return Fail(ErrorCode::kInvalid,
                std::string(what) + ": certificate has no readable public key");
  }
  return TypeOf(pub);
}

Result<bool> CertificateMatchesKey(std::string_view crt_pem, std::string_view key_pem,
                                   std::string_view what) {
  auto cert = ReadCert(crt_pem, what);
  if (!cert) {
    return std::unexpected(cert.error());
  }
  auto key = ReadKey(key_pem, what);
  if (!key) {
    return std::unexpected(key.error());
  }
  bool match = X509_check_private_key(cert->get(), key->get()) == 1;
  ERR_clear_error();
  return match;
}

Result<std::string> GenerateKey(KeyType type, int rsa_bits) {
  PkeyPtr key;
  switch (type) {
    case KeyType::kEd25519:
      key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
      break;
    case KeyType::kEcdsaP256:
      key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
      break;
    case KeyType::kRsa:
      key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits)));
      break;
    case KeyType::kOther:
      return Fail(ErrorCode::kInvalid, "cannot generate a key of type other");
  }
  if (!key) {
    return OpenSslFail(std::string("generate ") + KeyTypeName(type) + " key");
  }
  return WriteKey(key.get());
}

Result<CertAndKey> GenerateCa(KeyType type, const CertOptions& options, const Clock& clock) {
  auto key_pem = GenerateKey(type);
  if (!key_pem) {
    return std::unexpected(key_pem.error());
  }
  auto key = ReadKey(*key_pem, "generated key");
  if (!key) {
    return std::unexpected(key.error());
  }
  CertOptions ca_options = options;
  ca_options.is_ca = true;
  auto crt = MakeCertificate(key->get(), nullptr, key->get(), ca_options, clock);
  if (!crt) {
    return std::unexpected(crt.error());
  }
  return CertAndKey{*crt, *key_pem};
}

Result<CertAndKey> IssueCertificate(const CertAndKey& ca, const CertOptions& options,
                                    const Clock& clock) {
  auto ca_cert = ReadCert(ca.crt, "CA certificate");
  if (!ca_cert) {
    return std::unexpected(ca_cert.error());
  }
  auto ca_key = ReadKey(ca.key, "CA key");
  if (!ca_key) {
    return std::unexpected(ca_key.error());
  }
  KeyType type = TypeOf(ca_key->get());
  auto key_pem = GenerateKey(type == KeyType::kOther ? KeyType::kEcdsaP256 : type);
  if (!key_pem) {
    return std::unexpected(key_pem.error());
  }
  auto key = ReadKey(*key_pem, "generated key");
  if (!key) {
    return std::unexpected(key.error());
  }
  auto crt = MakeCertificate(key->get(), ca_cert->get(), ca_key->get(), options, clock);
  if (!crt) {
    return std::unexpected(crt.error());
  }
  return CertAndKey{*crt, *key_pem};
}

Result<CertificateInfo> InspectCertificate(std::string_view pem, std::string_view what) {
  auto cert = ReadCert(pem, what);
  if (!cert) {
    return std::unexpected(cert.error());
  }
  auto name_text = [](const X509_NAME* name) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
    return BioText(bio.get());
  };
  CertificateInfo info;
  info.subject = name_text(X509_get_subject_name(cert->get()));
  info.issuer = name_text(X509_get_issuer_name(cert->get()));
  info.not_before = ToTimePoint(X509_get0_notBefore(cert->get()));
  info.not_after = ToTimePoint(X509_get0_notAfter(cert->get()));
  info.is_ca = X509_check_ca(cert->get()) == 1;
  info.client_auth = (X509_get_extended_key_usage(cert->get()) & XKU_SSL_CLIENT) != 0;
  if (EVP_PKEY* pub = X509_get0_pubkey(cert->get())) {
    info.key_type = TypeOf(pub);
  }
  ERR_clear_error();
  return info;
}

}  // namespace ironboot::talos
