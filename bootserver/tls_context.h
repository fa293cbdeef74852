#pragma once
// bootserver/: the server certificate of the HTTPS listener (/config over
// TLS). One adapter from OpenSSL's failures to Error: every message names the
// file and says what was expected; key material never appears in one.

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "common/error.h"

namespace ironboot::bootserver {

using TlsContextPtr = std::shared_ptr<boost::asio::ssl::context>;

// A TLS 1.2+ server context from a PEM certificate chain (leaf first) and the
// PEM private key of the leaf. kNotFound when a file cannot be read; kInvalid
// when it holds no PEM certificate / private key, or the key is not the
// certificate's. The message names the file.
Result<TlsContextPtr> LoadServerTlsContext(const std::string& cert_file,
                                           const std::string& key_file);

}  // namespace ironboot::bootserver
