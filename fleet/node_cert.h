#pragma once
// fleet/: the serving certificate of a simulated node's Talos API, issued by
// the cluster's os CA with the node's IP (and name) as subject alt names, as
// Talos's apid certificate is, so clients verify the node they dialled.

#include <string>

#include "common/clock.h"
#include "common/error.h"
#include "talos/pki.h"

namespace ironboot::fleet {

// A fresh key of the CA's type (Ed25519 or ECDSA P-256) and a certificate for
// `ip` and `dns_name` (server and client auth, valid 1 year), PEM; the key in
// OpenSSL's PKCS#8 spelling. Errors name the node, never key material.
Result<talos::CertAndKey> IssueNodeCertificate(const talos::CertAndKey& os_ca,
                                               const std::string& ip, const std::string& dns_name,
                                               const Clock& clock);

}  // namespace ironboot::fleet
