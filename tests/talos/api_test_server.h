#pragma once
// tests/talos: a real MachineService gRPC server with mutual TLS on
// 127.0.0.1:0 for the Talos API client tests, and the PKI it uses (os CA from
// talos/pki.h; the server certificate with IP SAN 127.0.0.1 signed by the
// openssl CLI, since talos/pki.h issues no SANs).

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "machine/machine.grpc.pb.h"
#include "talos/pki.h"

namespace ironboot::talos::apitest {

struct ApiTestPki {
  CertAndKey ca;      // the os CA (key in Talos's spelling for Ed25519)
  CertAndKey server;  // O=talos, IP SAN 127.0.0.1, serverAuth (key: OpenSSL PKCS#8)
  CertAndKey client;  // O=os:admin, clientAuth
};
// A CA of `type`, a server and a client certificate; fails the test (ADD_FAILURE)
// and returns empty PEMs when a step fails.
ApiTestPki MakeApiTestPki(KeyType type);

// A talosconfig YAML (context "test") with base64 ca/crt/key as
// `ironboot talosconfig` writes it.
std::string TalosconfigYaml(const std::string& ca_pem, const CertAndKey& client);

// The canned replies, the recorded requests, and the failure knobs.
class FakeMachineService final : public machine::MachineService::Service {
 public:
  grpc::Status Version(grpc::ServerContext* ctx, const google::protobuf::Empty* req,
                       machine::VersionResponse* out) override;
  grpc::Status Upgrade(grpc::ServerContext* ctx, const machine::UpgradeRequest* req,
                       machine::UpgradeResponse* out) override;
  grpc::Status Reboot(grpc::ServerContext* ctx, const machine::RebootRequest* req,
                      machine::RebootResponse* out) override;
  grpc::Status ServiceList(grpc::ServerContext* ctx, const google::protobuf::Empty* req,
                           machine::ServiceListResponse* out) override;
  grpc::Status EtcdMemberList(grpc::ServerContext* ctx, const machine::EtcdMemberListRequest* req,
                              machine::EtcdMemberListResponse* out) override;
  grpc::Status EtcdStatus(grpc::ServerContext* ctx, const google::protobuf::Empty* req,
                          machine::EtcdStatusResponse* out) override;
  grpc::Status Bootstrap(grpc::ServerContext* ctx, const machine::BootstrapRequest* req,
                         machine::BootstrapResponse* out) override;
  grpc::Status Kubeconfig(grpc::ServerContext* ctx, const google::protobuf::Empty* req,
                          grpc::ServerWriter<common::Data>* writer) override;

  // Replies (set before calls).
  machine::VersionResponse version;
  machine::UpgradeResponse upgrade;
  machine::RebootResponse reboot;
  machine::ServiceListResponse services;
  machine::EtcdMemberListResponse members;
  machine::EtcdStatusResponse etcd_status;
  machine::BootstrapResponse bootstrap;
  std::vector<std::string> kubeconfig_chunks;  // each one common.Data message
  std::string kubeconfig_chunk_error;          // metadata.error of the last chunk
  // method name -> status returned instead of the reply
  std::map<std::string, grpc::Status> fail;
  // When true every call blocks until Release() or its client gives up.
  void Hang() {
    std::lock_guard l(mu_);
    hang_ = true;
  }
  void Release();

  // Recorded (read after calls).
  std::vector<std::string> Calls();
  std::vector<std::string> ClientSubjects();  // subject of each call's client certificate
  std::vector<std::string> Peers();           // each call's client address ("ipv4:127.0.0.1:N")
  machine::UpgradeRequest last_upgrade;
  machine::RebootRequest last_reboot;
  machine::BootstrapRequest last_bootstrap;
  machine::EtcdMemberListRequest last_member_list;

 private:
  // Records the call; returns the failure to return, if any.
  std::optional<grpc::Status> Enter(grpc::ServerContext* ctx, const std::string& name);
  std::mutex mu_;
  std::condition_variable cv_;
  bool hang_ = false;
  std::vector<std::string> calls_;
  std::vector<std::string> subjects_;
  std::vector<std::string> peers_;
};

// The server: MachineService with mutual TLS (client certificates required
// and verified against `client_ca_pem`) on 127.0.0.1, port chosen by the OS.
class ApiTestServer {
 public:
  ApiTestServer(const CertAndKey& server, const std::string& client_ca_pem,
                const std::string& address = "127.0.0.1", int port = 0);
  ~ApiTestServer();
  int port() const { return port_; }
  std::string node() const { return address_ + ":" + std::to_string(port_); }
  FakeMachineService& service() { return service_; }

 private:
  FakeMachineService service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int port_ = 0;
};

}  // namespace ironboot::talos::apitest
