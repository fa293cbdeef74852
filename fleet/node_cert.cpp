#include "fleet/node_cert.h"

#include <chrono>

namespace ironboot::fleet {

Result<talos::CertAndKey> IssueNodeCertificate(const talos::CertAndKey& os_ca,
                                               const std::string& ip, const std::string& dns_name,
                                               const Clock& clock) {
  talos::CertOptions options;
  options.common_name = dns_name;
  options.validity = std::chrono::hours(24 * 365);
  options.server_auth = true;
  options.client_auth = true;
  options.ip_addresses = {ip};
  options.dns_names = {dns_name};
  auto cert = talos::IssueCertificate(os_ca, options, clock);
  if (!cert) {
    return std::unexpected(cert.error().Wrap("node " + dns_name + ": issue Talos API certificate"));
  }
  // gRPC's server credentials read OpenSSL's spelling of an Ed25519 key.
  cert->key = talos::ToOpenSslKeyPem(cert->key);
  return cert;
}

}  // namespace ironboot::fleet
