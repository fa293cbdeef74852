#include "talos/tls_probe.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "talos/api_client.h"

namespace ironboot::talos {

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

void SetTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// A TCP connection to host:port, or -1.
int Dial(const std::string& host, const std::string& port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) {
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      continue;
    }
    SetTimeouts(fd, timeout);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      break;
    }
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  return fd;
}

std::string LastSslError() {
  unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) {
    return "";
  }
  const char* reason = ERR_reason_error_string(e);
  return reason != nullptr ? reason : "";
}

// "tlsv1 alert unknown ca" -> "unknown ca"; other texts as they are.
std::string AlertText(const std::string& reason) {
  size_t at = reason.find("alert ");
  return at == std::string::npos ? reason : reason.substr(at + 6);
}

bool IsAlert(const std::string& reason) {
  return reason.find("alert") != std::string::npos;
}

}  // namespace

std::optional<std::string> DiagnoseTlsRefusal(const std::string& target,
                                              const TalosCredentials& credentials,
                                              std::chrono::milliseconds timeout) {
  std::string host;
  std::string port;
  if (target.starts_with('[')) {
    size_t close = target.find(']');
    host = target.substr(1, close - 1);
    port = target.substr(close + 2);
  } else {
    size_t colon = target.rfind(':');
    host = target.substr(0, colon);
    port = target.substr(colon + 1);
  }
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  if (!ctx) {
    return std::nullopt;
  }
  {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(credentials.ca_pem.data(), static_cast<int>(credentials.ca_pem.size())),
        BIO_free);
    X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
    while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, ca);
      X509_free(ca);
    }
    ERR_clear_error();
  }
  {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(credentials.crt_pem.data(), static_cast<int>(credentials.crt_pem.size())),
        BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> crt(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> kbio(
        BIO_new_mem_buf(credentials.key_pem.data(), static_cast<int>(credentials.key_pem.size())),
        BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
    if (!crt || !key || SSL_CTX_use_certificate(ctx.get(), crt.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1) {
      ERR_clear_error();
      return std::nullopt;
    }
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn));

  Fd fd{Dial(host, port, timeout)};
  if (fd.fd < 0) {
    return std::nullopt;  // not reachable: not a TLS problem
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  if (!ssl) {
    return std::nullopt;
  }
  SSL_set_fd(ssl.get(), fd.fd);
  // The name check gRPC does: the node's address must be in its certificate.
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
    ERR_clear_error();
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  }
  if (SSL_connect(ssl.get()) != 1) {
    long verify = SSL_get_verify_result(ssl.get());
    std::string reason = LastSslError();
    if (verify != X509_V_OK) {
      return "server certificate: " + std::string(X509_verify_cert_error_string(verify));
    }
    if (IsAlert(reason)) {
      return "the node refused our client certificate (TLS alert: " + AlertText(reason) + ")";
    }
    if (!reason.empty()) {
      return "TLS handshake: " + reason;
    }
    return std::nullopt;
  }
  // TLS 1.3: the server checks our certificate after our Finished; a refusal
  // arrives as an alert on the first read. An accepting gRPC server sends its
  // HTTP/2 SETTINGS instead.
  char byte = 0;
  errno = 0;
  int n = SSL_read(ssl.get(), &byte, 1);
  if (n <= 0) {
    int err = SSL_get_error(ssl.get(), n);
    int saved_errno = errno;
    std::string reason = LastSslError();
    if (IsAlert(reason)) {
      return "the node refused our client certificate (TLS alert: " + AlertText(reason) + ")";
    }
    bool timed_out = err == SSL_ERROR_SYSCALL &&
                     (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == EINTR);
    if (!timed_out &&
        (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL)) {
      // Some servers (gRPC's own) drop the connection without sending the alert.
      return "the node closed the connection right after the TLS handshake: it refused our "
             "client certificate (not signed by its os CA?)";
    }
  }
  return std::nullopt;
}

}  // namespace ironboot::talos
