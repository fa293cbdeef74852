#include "tests/fleet/fleet_util.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>

#include "fleet/sim_kernel.h"

namespace ironboot::fleet::testing {

std::string NextAddressPrefix() {
  static std::atomic<int> counter{0};
  int n = counter++;
  int a = 20 + static_cast<int>(getpid() % 200);
  return "127." + std::to_string(a) + "." + std::to_string(1 + n % 250) + ".";
}

talos::CertAndKey MakeOsCa() {
  SystemClock clock;
  talos::CertOptions o;
  o.organization = "talos";
  o.validity = std::chrono::hours(24);
  o.is_ca = true;
  auto ca = talos::GenerateCa(talos::KeyType::kEd25519, o, clock);
  return ca.value();
}

talos::CertAndKey MakeClientCert(const talos::CertAndKey& ca) {
  SystemClock clock;
  talos::CertOptions o;
  o.organization = "os:admin";
  o.validity = std::chrono::hours(1);
  o.client_auth = true;
  auto c = talos::IssueCertificate(ca, o, clock).value();
  c.key = talos::ToOpenSslKeyPem(c.key);
  return c;
}

std::unique_ptr<machine::MachineService::Stub> Stub(const std::string& address,
                                                    const std::string& ca_crt,
                                                    const talos::CertAndKey& client) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ca_crt;
  o.pem_private_key = client.key;
  o.pem_cert_chain = client.crt;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  auto channel = grpc::CreateCustomChannel(address + ":50000", grpc::SslCredentials(o), args);
  return machine::MachineService::NewStub(channel);
}

ScriptedBootServer::ScriptedBootServer() {
  server_ = std::make_unique<StatusServer>(
      "127.0.0.1:0", [this](const std::string&, const std::string& target) {
        std::lock_guard lock(mu_);
        targets_.push_back(target);
        StatusReply reply;
        reply.content_type = "text/plain";
        auto it = routes_.find(target.substr(0, target.find('?')));
        if (it == routes_.end()) {
          reply.status = 404;
          reply.body = "404 not found\n";
        } else {
          reply.status = it->second.first;
          reply.body = it->second.second;
        }
        return reply;
      });
  (void)server_->Start().value();
}

void ScriptedBootServer::Set(const std::string& path, int status, const std::string& body) {
  std::lock_guard lock(mu_);
  routes_[path] = {status, body};
}

std::string ScriptedBootServer::url() const {
  return "http://127.0.0.1:" + std::to_string(server_->port());
}

std::vector<std::string> ScriptedBootServer::targets() const {
  std::lock_guard lock(mu_);
  return targets_;
}

void ServeVersion(ScriptedBootServer& server, const std::string& version) {
  server.Set("/boot.ipxe", 200,
             "#!ipxe\nchain ipxe?uuid=${uuid}&mac=${mac:hexhyp}&arch=${buildarch:uristring}\n");
  server.Set("/ipxe", 200,
             "#!ipxe\nkernel /assets/vmlinuz initrd=initramfs.xz talos.platform=metal "
             "talos.config=" +
                 server.url() +
                 "/assets/config?mac=${mac:hexhyp}\n"
                 "initrd /assets/initramfs.xz\nboot\n");
  server.Set("/assets/vmlinuz", 200, SimKernel(version));
  server.Set("/assets/initramfs.xz", 200, SimInitramfs(version));
  server.Set("/assets/config", 200, "version: v1alpha1\n");
}

}  // namespace ironboot::fleet::testing
