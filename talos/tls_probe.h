#pragma once
// talos/: why a TLS connection to a Talos API endpoint fails. gRPC reports a
// node that refuses our client certificate under TLS 1.3 only as "Socket
// closed" (the refusal arrives after the client's side of the handshake); this
// probe redoes the handshake with OpenSSL and reads the server's alert.

#include <chrono>
#include <optional>
#include <string>

namespace ironboot::talos {

struct TalosCredentials;

// Connects to `target` ("host:port", "[v6]:port"), handshakes with the os CA
// and our client certificate, and waits up to `timeout` for the server's
// first bytes. Returns a description of a TLS-level refusal ("server
// certificate: unable to get local issuer certificate", "the node refused our
// client certificate (TLS alert: unknown ca)"), or nullopt when TLS works or
// the node cannot be reached at all.
std::optional<std::string> DiagnoseTlsRefusal(const std::string& target,
                                              const TalosCredentials& credentials,
                                              std::chrono::milliseconds timeout);

}  // namespace ironboot::talos
