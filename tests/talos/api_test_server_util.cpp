#include "tests/talos/api_test_server.h"

#include <gtest/gtest.h>

#include <chrono>

#include "common/clock.h"
#include "tests/testutil/testutil.h"

namespace ironboot::talos::apitest {

ApiTestPki MakeApiTestPki(KeyType type) {
  ApiTestPki pki;
  SystemClock clock;
  CertOptions ca_options;
  ca_options.organization = "talos";
  ca_options.validity = std::chrono::hours(24);
  ca_options.is_ca = true;
  auto ca = GenerateCa(type, ca_options, clock);
  if (!ca) {
    ADD_FAILURE() << ca.error().message;
    return pki;
  }
  pki.ca = *ca;
  CertOptions client_options;
  client_options.organization = "os:admin";
  client_options.validity = std::chrono::hours(24);
  client_options.client_auth = true;
  auto client = IssueCertificate(*ca, client_options, clock);
  if (!client) {
    ADD_FAILURE() << client.error().message;
    return pki;
  }
  pki.client = *client;

  // The server certificate: Talos's apid certificate carries the node's IPs.
  testutil::TempDir dir;
  testutil::WriteFile(dir / "ca.crt", ca->crt);
  testutil::WriteFile(dir / "ca.key", ToOpenSslKeyPem(ca->key));
  testutil::WriteFile(dir / "ext.cnf",
                      "subjectAltName=IP:127.0.0.1\n"
                      "extendedKeyUsage=serverAuth,clientAuth\n"
                      "keyUsage=critical,digitalSignature\n"
                      "basicConstraints=critical,CA:FALSE\n");
  std::vector<std::string> genkey = {"openssl", "genpkey", "-out", (dir / "server.key").string()};
  if (type == KeyType::kEd25519) {
    genkey.insert(genkey.end(), {"-algorithm", "ED25519"});
  } else {
    genkey.insert(genkey.end(), {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"});
  }
  auto r = testutil::Run(genkey);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = testutil::Run({"openssl", "req", "-new", "-key", (dir / "server.key").string(), "-subj",
                     "/O=talos", "-out", (dir / "server.csr").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = testutil::Run({"openssl", "x509", "-req", "-in", (dir / "server.csr").string(), "-CA",
                     (dir / "ca.crt").string(), "-CAkey", (dir / "ca.key").string(), "-set_serial",
                     "4242", "-days", "1", "-extfile", (dir / "ext.cnf").string(), "-out",
                     (dir / "server.crt").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  pki.server.crt = testutil::ReadFile(dir / "server.crt");
  pki.server.key = testutil::ReadFile(dir / "server.key");
  return pki;
}

std::string TalosconfigYaml(const std::string& ca_pem, const CertAndKey& client) {
  return "context: test\n"
         "contexts:\n"
         "  test:\n"
         "    endpoints:\n"
         "      - 127.0.0.1\n"
         "    ca: " +
         Base64Encode(ca_pem) + "\n    crt: " + Base64Encode(client.crt) +
         "\n    key: " + Base64Encode(client.key) + "\n";
}

std::optional<grpc::Status> FakeMachineService::Enter(grpc::ServerContext* ctx,
                                                      const std::string& name) {
  std::string subject;
  auto auth = ctx->auth_context();
  if (auth) {
    auto pems = auth->FindPropertyValues("x509_pem_cert");
    if (!pems.empty()) {
      auto info = InspectCertificate(std::string(pems[0].data(), pems[0].size()), "client");
      if (info) {
        subject = info->subject;
      }
    }
  }
  std::unique_lock l(mu_);
  calls_.push_back(name);
  subjects_.push_back(subject);
  peers_.push_back(ctx->peer());
  while (hang_ && !ctx->IsCancelled()) {
    cv_.wait_for(l, std::chrono::milliseconds(20));
  }
  auto it = fail.find(name);
  if (it != fail.end()) {
    return it->second;
  }
  return std::nullopt;
}

void FakeMachineService::Release() {
  std::lock_guard l(mu_);
  hang_ = false;
  cv_.notify_all();
}

std::vector<std::string> FakeMachineService::Calls() {
  std::lock_guard l(mu_);
  return calls_;
}

std::vector<std::string> FakeMachineService::Peers() {
  std::lock_guard l(mu_);
  return peers_;
}

std::vector<std::string> FakeMachineService::ClientSubjects() {
  std::lock_guard l(mu_);
  return subjects_;
}

grpc::Status FakeMachineService::Version(grpc::ServerContext* ctx, const google::protobuf::Empty*,
                                         machine::VersionResponse* out) {
  if (auto f = Enter(ctx, "Version")) {
    return *f;
  }
  *out = version;
  return grpc::Status::OK;
}

grpc::Status FakeMachineService::Upgrade(grpc::ServerContext* ctx,
                                         const machine::UpgradeRequest* req,
                                         machine::UpgradeResponse* out) {
  if (auto f = Enter(ctx, "Upgrade")) {
    return *f;
  }
  std::lock_guard l(mu_);
  last_upgrade = *req;
  *out = upgrade;
  return grpc::Status::OK;
}

grpc::Status FakeMachineService::Reboot(grpc::ServerContext* ctx, const machine::RebootRequest* req,
                                        machine::RebootResponse* out) {
  if (auto f = Enter(ctx, "Reboot")) {
    return *f;
  }
  std::lock_guard l(mu_);
  last_reboot = *req;
  *out = reboot;
  return grpc::Status::OK;
}

grpc::Status FakeMachineService::ServiceList(grpc::ServerContext* ctx,
                                             const google::protobuf::Empty*,
                                             machine::ServiceListResponse* out) {
  if (auto f = Enter(ctx, "ServiceList")) {
    return *f;
  }
  *out = services;
  return grpc::Status::OK;
}

grpc::Status FakeMachineService::EtcdMemberList(grpc::ServerContext* ctx,
                                                const machine::EtcdMemberListRequest* req,
                                                machine::EtcdMemberListResponse* out) {
  if (auto f = Enter(ctx, "EtcdMemberList")) {
    return *f;
  }
  std::lock_guard l(mu_);
  last_member_list = *req;
  *out = members;
  return grpc::Status::OK;
}

grpc::Status FakeMachineService::EtcdStatus(grpc::ServerContext* ctx,
                                            const google::protobuf::Empty*,
                                            machine::EtcdStatusResponse* out) {
  if (auto f = Enter(ctx, "EtcdStatus")) {
    return *f;
  }
  *out = etcd_status;
  return grpc::Status::OK;
}

grpc::Status FakeMachineService::Bootstrap(grpc::ServerContext* ctx,
                                           const machine::BootstrapRequest* req,
                                           machine::BootstrapResponse* out) {
  if (auto f = Enter(ctx, "Bootstrap")) {
    return *f;
  }
  std::lock_guard l(mu_);
  last_bootstrap = *req;
  *out = bootstrap;
  return grpc::Status::OK;
}

grpc::Status FakeMachineService::Kubeconfig(grpc::ServerContext* ctx,
                                            const google::protobuf::Empty*,
                                            grpc::ServerWriter<common::Data>* writer) {
  if (auto f = Enter(ctx, "Kubeconfig")) {
    return *f;
  }
  for (size_t i = 0; i < kubeconfig_chunks.size(); ++i) {
    common::Data data;
    data.mutable_metadata()->set_hostname("talos-test");
    data.set_bytes(kubeconfig_chunks[i]);
    if (i + 1 == kubeconfig_chunks.size() && !kubeconfig_chunk_error.empty()) {
      data.mutable_metadata()->set_error(kubeconfig_chunk_error);
    }
    if (!writer->Write(data)) {
      break;
    }
  }
  return grpc::Status::OK;
}

ApiTestServer::ApiTestServer(const CertAndKey& server, const std::string& client_ca_pem,
                             const std::string& address, int port)
    : address_(address) {
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = client_ca_pem;
  ssl.pem_key_cert_pairs.push_back({ToOpenSslKeyPem(server.key), server.crt});
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address + ":" + std::to_string(port), grpc::SslServerCredentials(ssl), &port_);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  EXPECT_TRUE(server_ != nullptr);
  EXPECT_GT(port_, 0);
}

ApiTestServer::~ApiTestServer() {
  service_.Release();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
}

}  // namespace ironboot::talos::apitest
