#include "fleet/node_cert.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <memory>

namespace ironboot::fleet {
namespace {

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Ext = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

Bio MemBio(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

Result<talos::CertAndKey> IssueNodeCertificate(const talos::CertAndKey& os_ca,
                                               const std::string& ip, const std::string& dns_name,
                                               const Clock& clock) {
  auto fail = [&](const std::string& what) {
    return Fail(ErrorCode::kInternal,
                "node " + dns_name + ": issue Talos API certificate: " + what);
  };
  std::string ca_key_pem = talos::ToOpenSslKeyPem(os_ca.key);
  auto key_bio = MemBio(ca_key_pem);
  Key ca_key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  auto crt_bio = MemBio(os_ca.crt);
  Cert ca_crt(PEM_read_bio_X509(crt_bio.get(), nullptr, nullptr, nullptr));
  if (!ca_key || !ca_crt) {
    return fail("os CA certificate or key is not PEM");
  }
  bool ed25519 = EVP_PKEY_get_id(ca_key.get()) == EVP_PKEY_ED25519;
  Key key(ed25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                  : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) {
    return fail("key generation failed");
  }
  Cert crt(X509_new());
  X509_set_version(crt.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt.get()));
  BN_free(bn);
  time_t now = std::chrono::system_clock::to_time_t(clock.Now());
  ASN1_TIME_set(X509_getm_notBefore(crt.get()), now - 3600);
  ASN1_TIME_set(X509_getm_notAfter(crt.get()), now + 365L * 24 * 3600);
  X509_NAME* subject = X509_get_subject_name(crt.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(dns_name.c_str()), -1, -1, 0);
  X509_set_issuer_name(crt.get(), X509_get_subject_name(ca_crt.get()));
  X509_set_pubkey(crt.get(), key.get());

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_crt.get(), crt.get(), nullptr, nullptr, 0);
  std::string san = "IP:" + ip + ",DNS:" + dns_name;
  const std::pair<int, std::string> extensions[] = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, "serverAuth,clientAuth"},
      {NID_subject_alt_name, san},
  };
  for (const auto& [nid, value] : extensions) {
    Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || X509_add_ext(crt.get(), ext.get(), -1) != 1) {
      return fail("bad extension " + std::string(OBJ_nid2sn(nid)) + " (address \"" + ip + "\")");
    }
  }
  if (X509_sign(crt.get(), ca_key.get(), ed25519 ? nullptr : EVP_sha256()) <= 0) {
    return fail("signing failed");
  }
  Bio crt_out(BIO_new(BIO_s_mem()));
  Bio key_out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(crt_out.get(), crt.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1) {
    return fail("PEM encoding failed");
  }
  return talos::CertAndKey{BioText(crt_out.get()), BioText(key_out.get())};
}

}  // namespace ironboot::fleet
