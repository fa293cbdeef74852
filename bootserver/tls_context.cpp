#include "bootserver/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/error.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace ironboot::bootserver {

namespace ssl = boost::asio::ssl;

namespace {

// Empty when `path` is a readable file, else why not.
std::string Unreadable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::strerror(errno);
  }
  char c = 0;
  if (!in.get(c)) {
    return "the file is empty";
  }
  return {};
}

}  // namespace

Result<TlsContextPtr> LoadServerTlsContext(const std::string& cert_file,
                                           const std::string& key_file) {
  const std::string cert_name = "certificate file \"" + cert_file + "\"";
  const std::string key_name = "private key file \"" + key_file + "\"";
  if (auto why = Unreadable(cert_file); !why.empty()) {
    return Fail(ErrorCode::kNotFound, cert_name + " cannot be read: " + why);
  }
  if (auto why = Unreadable(key_file); !why.empty()) {
    return Fail(ErrorCode::kNotFound, key_name + " cannot be read: " + why);
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  // TLS 1.2 and 1.3 only (Go's default minimum for clients is 1.2).
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  boost::system::error_code ec;
  ERR_clear_error();
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return Fail(ErrorCode::kInvalid, cert_name +
                                         ": not a PEM certificate chain (want "
                                         "-----BEGIN CERTIFICATE-----, leaf first): " +
                                         ec.message());
  }
  // Never a passphrase prompt on the terminal: an encrypted key fails here.
  ctx->set_password_callback(
      [](std::size_t, ssl::context::password_purpose) { return std::string(); }, ec);
  ERR_clear_error();
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
    return Fail(ErrorCode::kInvalid,
                key_name + " does not belong to the certificate in " + cert_name);
  }
  if (ec) {
    return Fail(ErrorCode::kInvalid,
                key_name +
                    ": not an unencrypted PEM private key (want -----BEGIN PRIVATE KEY----- "
                    "or -----BEGIN EC/RSA PRIVATE KEY-----): " +
                    ec.message());
  }
  ERR_clear_error();
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalid,
                key_name + " does not belong to the certificate in " + cert_name);
  }
  return ctx;
}

}  // namespace ironboot::bootserver
