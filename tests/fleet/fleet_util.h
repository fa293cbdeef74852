#pragma once
// tests/fleet: helpers for the simulated-fleet tests: unique loopback
// addresses per test, an os CA, a raw Talos API stub with mutual TLS, and a
// scripted boot server (fleet::StatusServer answering from a route table).

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fleet/fleet.h"
#include "fleet/status_server.h"
#include "machine/machine.grpc.pb.h"
#include "talos/pki.h"

namespace ironboot::fleet::testing {

// "127.A.B." with A.B unique to this process and call, so tests running in
// parallel never share a node address (each node binds <address>:50000).
std::string NextAddressPrefix();

// A fresh Ed25519 os CA (as in a Talos secrets bundle).
talos::CertAndKey MakeOsCa();
// A client certificate (os:admin) signed by `ca`, key in OpenSSL's spelling.
talos::CertAndKey MakeClientCert(const talos::CertAndKey& ca);

// A MachineService stub to address:50000, verifying the server against
// `ca_crt` and presenting `client` (empty crt: no client certificate).
std::unique_ptr<machine::MachineService::Stub> Stub(const std::string& address,
                                                    const std::string& ca_crt,
                                                    const talos::CertAndKey& client);

// A boot server whose answers the test sets per path ("/boot.ipxe",
// "/ipxe", "/assets/k"); unknown paths are 404.
class ScriptedBootServer {
 public:
  ScriptedBootServer();
  void Set(const std::string& path, int status, const std::string& body);
  std::string url() const;
  std::vector<std::string> targets() const;  // every request target so far
  void Stop() { server_->Stop(); }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::pair<int, std::string>> routes_;
  std::vector<std::string> targets_;
  std::unique_ptr<StatusServer> server_;
};

// Serves stand-in assets for `version` and a Matchbox-style chain:
// /boot.ipxe -> chain ipxe?mac=${mac:hexhyp} -> kernel/initrd/config.
void ServeVersion(ScriptedBootServer& server, const std::string& version);

}  // namespace ironboot::fleet::testing
