// TalosApiClient against a real MachineService gRPC server with mutual TLS on
// 127.0.0.1 (tests/talos/api_test_server.h).

#include "talos/api_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "talos/kubeconfig_archive.h"
#include "tests/talos/api_test_server.h"
#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

using apitest::ApiTestPki;
using apitest::ApiTestServer;
using apitest::MakeApiTestPki;
using ::testing::HasSubstr;

TalosCredentials CredsOf(const std::string& ca, const CertAndKey& client) {
  return TalosCredentials{ca, client.crt, client.key};
}

class TalosApiClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new ApiTestPki(MakeApiTestPki(KeyType::kEd25519));
    other_ = new ApiTestPki(MakeApiTestPki(KeyType::kEd25519));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete other_;
  }
  void SetUp() override {
    server_ = std::make_unique<ApiTestServer>(pki_->server, pki_->ca.crt);
    auto client = TalosApiClient::Create(CredsOf(pki_->ca.crt, pki_->client));
    ASSERT_TRUE(client) << client.error().message;
    client_ = std::move(*client);
  }
  apitest::FakeMachineService& svc() { return server_->service(); }
  std::string node() const { return server_->node(); }

  static ApiTestPki* pki_;
  static ApiTestPki* other_;  // a second cluster: another os CA
  std::unique_ptr<ApiTestServer> server_;
  std::unique_ptr<TalosApiClient> client_;
};
ApiTestPki* TalosApiClientTest::pki_ = nullptr;
ApiTestPki* TalosApiClientTest::other_ = nullptr;

// Version returns tag, sha, arch and platform name; the server saw our os:admin client certificate.
TEST_F(TalosApiClientTest, VersionRoundTripsOverMutualTlsWithEd25519) {
  auto* m = svc().version.add_messages();
  m->mutable_metadata()->set_hostname("cp-1");
  m->mutable_version()->set_tag("v1.11.3");
  m->mutable_version()->set_sha("5ae4d2d");
  m->mutable_version()->set_arch("amd64");
  m->mutable_version()->set_os("linux");
  m->mutable_platform()->set_name("metal");
  m->mutable_platform()->set_mode("metal");
  auto v = client_->Version(node());
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->tag, "v1.11.3");
  EXPECT_EQ(v->sha, "5ae4d2d");
  EXPECT_EQ(v->arch, "amd64");
  EXPECT_EQ(v->platform, "metal");
  ASSERT_EQ(svc().ClientSubjects().size(), 1u);
  EXPECT_THAT(svc().ClientSubjects()[0], HasSubstr("O=os:admin"));
}

// ServiceList maps id, state, health (healthy / unknown) and the last health message.
TEST_F(TalosApiClientTest, ServicesRoundTrip) {
  auto* m = svc().services.add_messages();
  auto* etcd = m->add_services();
  etcd->set_id("etcd");
  etcd->set_state("Running");
  etcd->mutable_health()->set_healthy(true);
  etcd->mutable_health()->set_last_message("");
  etcd->mutable_health()->mutable_last_change()->set_seconds(1700000000);
  auto* kubelet = m->add_services();
  kubelet->set_id("kubelet");
  kubelet->set_state("Waiting");
  kubelet->mutable_health()->set_unknown(true);
  kubelet->mutable_health()->set_last_message("waiting for etcd");
  auto* apid = m->add_services();  // no health reported at all
  apid->set_id("apid");
  apid->set_state("Running");
  auto s = client_->Services(node());
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].id, "etcd");
  EXPECT_EQ((*s)[0].state, "Running");
  EXPECT_TRUE((*s)[0].healthy);
  EXPECT_FALSE((*s)[0].health_unknown);
  EXPECT_EQ((*s)[1].id, "kubelet");
  EXPECT_EQ((*s)[1].state, "Waiting");
  EXPECT_FALSE((*s)[1].healthy);
  EXPECT_TRUE((*s)[1].health_unknown);
  EXPECT_EQ((*s)[1].last_message, "waiting for etcd");
  EXPECT_TRUE((*s)[2].health_unknown);
}

// EtcdMemberList maps 64-bit ids, hostnames, URLs and learners, and asks for the cluster's list.
TEST_F(TalosApiClientTest, EtcdMembersRoundTrip) {
  auto* m = svc().members.add_messages();
  auto* a = m->add_members();
  a->set_id(0xad3c5f0e0b7a9e21ULL);
  a->set_hostname("cp-1");
  a->add_peer_urls("https://10.0.4.101:2380");
  a->add_client_urls("https://10.0.4.101:2379");
  auto* b = m->add_members();
  b->set_id(7);
  b->set_hostname("cp-2");
  b->add_peer_urls("https://10.0.4.102:2380");
  b->add_peer_urls("https://[fd00::2]:2380");
  b->set_is_learner(true);
  svc().last_member_list.set_query_local(true);
  auto members = client_->EtcdMembers(node());
  ASSERT_TRUE(members) << members.error().message;
  ASSERT_EQ(members->size(), 2u);
  EXPECT_EQ((*members)[0].id, 0xad3c5f0e0b7a9e21ULL);
  EXPECT_EQ((*members)[0].hostname, "cp-1");
  EXPECT_EQ((*members)[0].peer_urls, std::vector<std::string>{"https://10.0.4.101:2380"});
  EXPECT_EQ((*members)[0].client_urls, std::vector<std::string>{"https://10.0.4.101:2379"});
  EXPECT_FALSE((*members)[0].is_learner);
  EXPECT_EQ((*members)[1].peer_urls.size(), 2u);
  EXPECT_TRUE((*members)[1].is_learner);
  EXPECT_FALSE(svc().last_member_list.query_local());
}

// EtcdStatus maps member id, leader, raft index/term, errors and learner.
TEST_F(TalosApiClientTest, EtcdStatusRoundTrip) {
  auto* st = svc().etcd_status.add_messages()->mutable_member_status();
  st->set_member_id(0xad3c5f0e0b7a9e21ULL);
  st->set_leader(7);
  st->set_raft_index(123456);
  st->set_raft_term(9);
  st->set_raft_applied_index(123450);
  st->set_db_size(1 << 20);
  st->set_protocol_version("3.5.0");
  st->add_errors("NOSPACE");
  st->set_is_learner(false);
  auto s = client_->EtcdStatus(node());
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->member_id, 0xad3c5f0e0b7a9e21ULL);
  EXPECT_EQ(s->leader, 7u);
  EXPECT_EQ(s->raft_index, 123456u);
  EXPECT_EQ(s->raft_term, 9u);
  EXPECT_EQ(s->errors, std::vector<std::string>{"NOSPACE"});
  EXPECT_FALSE(s->is_learner);
}

// Reboot sends the mode (DEFAULT, POWERCYCLE, FORCE) the caller asked for.
TEST_F(TalosApiClientTest, RebootSendsMode) {
  svc().reboot.add_messages()->set_actor_id("a1");
  ASSERT_TRUE(client_->Reboot(node(), RebootMode::kPowercycle));
  EXPECT_EQ(svc().last_reboot.mode(), machine::RebootRequest::POWERCYCLE);
  ASSERT_TRUE(client_->Reboot(node(), RebootMode::kForce));
  EXPECT_EQ(svc().last_reboot.mode(), machine::RebootRequest::FORCE);
  ASSERT_TRUE(client_->Reboot(node(), RebootMode::kDefault));
  EXPECT_EQ(svc().last_reboot.mode(), machine::RebootRequest::DEFAULT);
  EXPECT_EQ(svc().Calls().size(), 3u);
}

// Upgrade sends image and preserve, and neither stage nor force.
TEST_F(TalosApiClientTest, UpgradeSendsImageAndPreserve) {
  auto* m = svc().upgrade.add_messages();
  m->set_ack("Upgrade request received");
  m->set_actor_id("a2");
  auto r = client_->Upgrade(node(), "ghcr.io/siderolabs/installer:v1.11.3", true);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(svc().last_upgrade.image(), "ghcr.io/siderolabs/installer:v1.11.3");
  EXPECT_TRUE(svc().last_upgrade.preserve());
  EXPECT_FALSE(svc().last_upgrade.stage());
  EXPECT_FALSE(svc().last_upgrade.force());
  ASSERT_TRUE(client_->Upgrade(node(), "ghcr.io/siderolabs/installer:v1.11.4", false));
  EXPECT_FALSE(svc().last_upgrade.preserve());
}

// An empty installer image is refused before anything is sent.
TEST_F(TalosApiClientTest, UpgradeWithoutImageIsRefusedLocally) {
  auto r = client_->Upgrade(node(), "", false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(r.error().message, HasSubstr("Upgrade: no installer image"));
  EXPECT_TRUE(svc().Calls().empty());
}

// Bootstrap is one call, with no etcd recovery requested.
TEST_F(TalosApiClientTest, BootstrapCallsOnceWithoutRecovery) {
  svc().bootstrap.add_messages()->mutable_metadata()->set_hostname("cp-1");
  ASSERT_TRUE(client_->Bootstrap(node()));
  EXPECT_EQ(svc().Calls(), std::vector<std::string>{"Bootstrap"});
  EXPECT_FALSE(svc().last_bootstrap.recover_etcd());
  EXPECT_FALSE(svc().last_bootstrap.recover_skip_hash_check());
}

// A reply whose metadata.error is set is an error naming node, call and the node's text.
TEST_F(TalosApiClientTest, MetadataErrorIsAnError) {
  svc().etcd_status.add_messages()->mutable_metadata()->set_error("etcd is not running");
  auto s = client_->EtcdStatus(node());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(s.error().message,
            "Talos API " + node() + " EtcdStatus: the node reported an error: etcd is not running");
  svc().bootstrap.add_messages()->mutable_metadata()->set_error("bootstrap is not available yet");
  auto b = client_->Bootstrap(node());
  ASSERT_FALSE(b);
  EXPECT_THAT(b.error().message, HasSubstr(node() + " Bootstrap: the node reported an error: "
                                                    "bootstrap is not available yet"));
}

// A reply with no per-node message is an error for calls that need one.
TEST_F(TalosApiClientTest, EmptyReplyIsAnError) {
  auto v = client_->Version(node());
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().message, "Talos API " + node() + " Version: reply holds no messages");
}

// gRPC statuses map to error codes: refusals kInvalid, auth kUnauthorized; the message keeps the
// node's text.
TEST_F(TalosApiClientTest, StatusCodesMapToErrorCodes) {
  svc().fail["Upgrade"] =
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "etcd has exactly 2 members");
  auto u = client_->Upgrade(node(), "ghcr.io/siderolabs/installer:v1.11.3", false);
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(u.error().message, "Talos API " + node() +
                                   " Upgrade: the node refused the request: FAILED_PRECONDITION: "
                                   "etcd has exactly 2 members");
  svc().fail["Reboot"] = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad mode");
  auto r = client_->Reboot(node(), RebootMode::kDefault);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
  svc().fail["Version"] = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not authorized");
  auto v = client_->Version(node());
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(v.error().message, HasSubstr(node() + " Version: credentials refused"));
  svc().fail["ServiceList"] = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "who are you");
  auto s = client_->Services(node());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnauthorized);
  svc().fail["EtcdMemberList"] = grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcd is down");
  auto m = client_->EtcdMembers(node());
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(m.error().message, HasSubstr(node() + " EtcdMemberList: node unavailable"));
  svc().fail["EtcdStatus"] = grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not a control plane");
  auto e = client_->EtcdStatus(node());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, ErrorCode::kInvalid);
}

// A client certificate from another cluster's os CA is refused: kUnauthorized naming the node.
TEST_F(TalosApiClientTest, ClientCertificateFromAnotherCaIsRefused) {
  // Our CA verifies the server; the client certificate comes from the other CA.
  auto stranger = TalosApiClient::Create(CredsOf(pki_->ca.crt, other_->client));
  ASSERT_TRUE(stranger) << stranger.error().message;
  auto v = (*stranger)->Version(node());
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::kUnauthorized) << v.error().message;
  EXPECT_THAT(v.error().message,
              HasSubstr("Talos API " + node() +
                        " Version: TLS handshake failed: the node closed the connection right "
                        "after the TLS handshake: it refused our client certificate"));
  EXPECT_TRUE(svc().Calls().empty());
}

// A server whose certificate is not from our os CA is refused: kUnauthorized naming the node.
TEST_F(TalosApiClientTest, ServerCertificateFromAnotherCaIsRefused) {
  ApiTestServer impostor(other_->server, pki_->ca.crt);
  auto v = client_->Version(impostor.node());
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::kUnauthorized) << v.error().message;
  EXPECT_THAT(v.error().message, HasSubstr("Talos API " + impostor.node() + " Version: TLS"));
  EXPECT_TRUE(impostor.service().Calls().empty());
}

// A node whose certificate does not name the address we dialled is refused (Talos certs carry IP
// SANs).
TEST_F(TalosApiClientTest, ServerCertificateForAnotherAddressIsRefused) {
  ApiTestServer elsewhere(pki_->server, pki_->ca.crt, "127.0.0.2");  // cert: IP 127.0.0.1 only
  auto v = client_->Version(elsewhere.node());
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::kUnauthorized) << v.error().message;
  EXPECT_THAT(v.error().message, HasSubstr("Talos API " + elsewhere.node() + " Version: TLS"));
  EXPECT_TRUE(elsewhere.service().Calls().empty());
}

// Calls to one node share one connection (the channel is cached per node).
TEST_F(TalosApiClientTest, CallsToOneNodeShareAConnection) {
  svc().version.add_messages()->mutable_version()->set_tag("v1.11.3");
  svc().services.add_messages();
  ASSERT_TRUE(client_->Version(node()));
  ASSERT_TRUE(client_->Services(node()));
  ASSERT_TRUE(client_->Version(node()));
  auto peers = svc().Peers();
  ASSERT_EQ(peers.size(), 3u);
  EXPECT_EQ(peers[0], peers[1]);
  EXPECT_EQ(peers[1], peers[2]);
}

// A node that does not answer within the deadline: kUnavailable naming node, call and deadline.
TEST_F(TalosApiClientTest, SilentNodeHitsTheDeadline) {
  TalosApiOptions options;
  options.deadline = std::chrono::milliseconds(300);
  auto client = TalosApiClient::Create(CredsOf(pki_->ca.crt, pki_->client), options);
  ASSERT_TRUE(client);
  svc().Hang();
  auto start = std::chrono::steady_clock::now();
  auto r = (*client)->Reboot(node(), RebootMode::kDefault);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().message, "Talos API " + node() +
                                   " Reboot: deadline exceeded after 300ms (the node did not "
                                   "answer)");
  EXPECT_LT(took, std::chrono::seconds(3));
  svc().Release();
  // The node answers again: the next call succeeds on a fresh connection.
  svc().reboot.add_messages();
  EXPECT_TRUE((*client)->Reboot(node(), RebootMode::kDefault));
}

// A node that goes away (a reboot) and comes back on the same address is
// answered by the first call after it is back, without a new client: the
// channel dials at once instead of waiting out gRPC's reconnect backoff.
TEST_F(TalosApiClientTest, NodeThatRestartsIsReachedAgainAtOnce) {
  TalosApiOptions options;
  options.redial_wait = std::chrono::seconds(2);  // a busy CI machine's handshake
  auto made = TalosApiClient::Create(CredsOf(pki_->ca.crt, pki_->client), options);
  ASSERT_TRUE(made);
  client_ = std::move(*made);
  int port = server_->port();
  svc().version.add_messages()->mutable_version()->set_tag("v1.11.3");
  ASSERT_TRUE(client_->Version(node()));
  std::string address = node();
  server_.reset();
  for (int i = 0; i < 2; ++i) {  // down: every call fails, and the backoff grows
    auto down = client_->Version(address);
    ASSERT_FALSE(down);
    EXPECT_EQ(down.error().code, ErrorCode::kUnavailable) << down.error().message;
  }
  server_ = std::make_unique<ApiTestServer>(pki_->server, pki_->ca.crt, "127.0.0.1", port);
  ASSERT_EQ(server_->node(), address);
  svc().version.add_messages()->mutable_version()->set_tag("v1.12.0");
  auto up = client_->Version(address);
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ(up->tag, "v1.12.0");
}

// Nothing listening on the port: kUnavailable naming node and call.
TEST_F(TalosApiClientTest, NothingListeningIsUnavailable) {
  std::string dead = "127.0.0.1:" + std::to_string(testutil::FreePort());
  auto v = client_->Version(dead);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::kUnavailable) << v.error().message;
  EXPECT_THAT(v.error().message, HasSubstr("Talos API " + dead + " Version: node unavailable"));
}

// Kubeconfig concatenates the stream's chunks and unpacks the .tar.gz made by real tar.
TEST_F(TalosApiClientTest, KubeconfigUnpacksTarGzFromRealTar) {
  testutil::TempDir dir;
  std::string kubeconfig =
      "apiVersion: v1\nkind: Config\nclusters:\n- name: homelab\n  cluster:\n"
      "    server: https://10.0.4.10:6443\n" +
      std::string(3000, '#') + "\n";
  testutil::WriteFile(dir / "kubeconfig", kubeconfig);
  auto tar = testutil::Run(
      {"tar", "czf", (dir / "kc.tar.gz").string(), "-C", dir.path().string(), "kubeconfig"});
  ASSERT_EQ(tar.exit_code, 0) << tar.output;
  std::string archive = testutil::ReadFile(dir / "kc.tar.gz");
  for (size_t i = 0; i < archive.size(); i += 100) {
    svc().kubeconfig_chunks.push_back(archive.substr(i, 100));
  }
  ASSERT_GT(svc().kubeconfig_chunks.size(), 2u);
  auto k = client_->Kubeconfig(node());
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(*k, kubeconfig);
}

// A corrupt or truncated archive is a clear kInvalid error naming node and call.
TEST_F(TalosApiClientTest, CorruptKubeconfigArchiveIsAnError) {
  svc().kubeconfig_chunks = {"this is not gzip"};
  auto k = client_->Kubeconfig(node());
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(k.error().message, "Talos API " + node() +
                                   " Kubeconfig: kubeconfig archive: not a gzip stream (16 bytes, "
                                   "want a .tar.gz starting with 1f 8b)");
  testutil::TempDir dir;
  testutil::WriteFile(dir / "kubeconfig", std::string(5000, 'k'));
  ASSERT_EQ(testutil::Run({"tar", "czf", (dir / "kc.tar.gz").string(), "-C", dir.path().string(),
                           "kubeconfig"})
                .exit_code,
            0);
  std::string archive = testutil::ReadFile(dir / "kc.tar.gz");
  svc().kubeconfig_chunks = {archive.substr(0, archive.size() / 2)};
  k = client_->Kubeconfig(node());
  ASSERT_FALSE(k);
  EXPECT_THAT(k.error().message,
              HasSubstr(node() + " Kubeconfig: kubeconfig archive: truncated gzip data"));
}

// A chunk with metadata.error fails the call with the node's text.
TEST_F(TalosApiClientTest, KubeconfigChunkErrorIsAnError) {
  svc().kubeconfig_chunks = {"x"};
  svc().kubeconfig_chunk_error = "kubeconfig is not available yet";
  auto k = client_->Kubeconfig(node());
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().message, "Talos API " + node() +
                                   " Kubeconfig: the node reported an error: kubeconfig is not "
                                   "available yet");
}

// ECDSA P-256 os CAs (older Talos clusters) work the same.
TEST(TalosApiClientEcdsaTest, VersionOverMutualTlsWithEcdsa) {
  ApiTestPki pki = MakeApiTestPki(KeyType::kEcdsaP256);
  ApiTestServer server(pki.server, pki.ca.crt);
  server.service().version.add_messages()->mutable_version()->set_tag("v1.5.5");
  auto client = TalosApiClient::Create(CredsOf(pki.ca.crt, pki.client));
  ASSERT_TRUE(client) << client.error().message;
  auto v = (*client)->Version(server.node());
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->tag, "v1.5.5");
}

// Node addresses: bare IP gets port 50000; host:port, [v6]:port kept; bad ports refused.
TEST(TalosApiTargetTest, NodeAddressForms) {
  EXPECT_EQ(TalosApiTarget("10.0.4.101").value(), "10.0.4.101:50000");
  EXPECT_EQ(TalosApiTarget("127.0.4.101:50001").value(), "127.0.4.101:50001");
  EXPECT_EQ(TalosApiTarget("cp-1.lan").value(), "cp-1.lan:50000");
  EXPECT_EQ(TalosApiTarget("fd00::5").value(), "[fd00::5]:50000");
  EXPECT_EQ(TalosApiTarget("[fd00::5]").value(), "[fd00::5]:50000");
  EXPECT_EQ(TalosApiTarget("[fd00::5]:6000").value(), "[fd00::5]:6000");
  auto bad = TalosApiTarget("10.0.4.101:99999");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "node \"10.0.4.101:99999\": port \"99999\" is not a number in 1..65535");
  EXPECT_FALSE(TalosApiTarget(""));
  EXPECT_FALSE(TalosApiTarget("host:"));
  EXPECT_FALSE(TalosApiTarget("[fd00::5"));
}

// A bad node address fails the call with the call's name, without dialling.
TEST_F(TalosApiClientTest, BadNodeAddressNamesTheCall) {
  auto v = client_->Version("10.0.4.101:http");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(v.error().message,
            "Talos API Version: node \"10.0.4.101:http\": port \"http\" is not a number in "
            "1..65535");
}

// The talosconfig's current context (or a named one) gives the PEMs; they work against the server.
TEST_F(TalosApiClientTest, CredentialsFromTalosconfig) {
  testutil::TempDir dir;
  testutil::WriteFile(dir / "talosconfig", apitest::TalosconfigYaml(pki_->ca.crt, pki_->client));
  auto creds = LoadTalosconfigCredentials((dir / "talosconfig").string());
  ASSERT_TRUE(creds) << creds.error().message;
  EXPECT_EQ(creds->ca_pem, pki_->ca.crt);
  EXPECT_EQ(creds->crt_pem, pki_->client.crt);
  EXPECT_EQ(creds->key_pem, pki_->client.key);
  auto named = LoadTalosconfigCredentials((dir / "talosconfig").string(), "test");
  ASSERT_TRUE(named);
  auto client = TalosApiClient::Create(*creds);
  ASSERT_TRUE(client);
  svc().version.add_messages()->mutable_version()->set_tag("v1.11.3");
  EXPECT_TRUE((*client)->Version(node()));
}

// Talosconfig errors name the file, context and field, never a value.
TEST(TalosconfigCredentialsTest, ErrorsNameFileContextAndField) {
  auto r = ParseTalosconfigCredentials("context: test\ncontexts:\n  test:\n    ca: Zm9v\n", "tc");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "tc: contexts.test.ca does not decode to a PEM block");
  r = ParseTalosconfigCredentials(
      "context: test\ncontexts:\n  test:\n    ca: LS0tLS1CRUdJTiBY\n    crt: '!!!'\n", "tc");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "tc: contexts.test.crt is not base64 (want a base64 PEM)");
  r = ParseTalosconfigCredentials(
      "context: test\ncontexts:\n  test:\n    ca: LS0tLS1CRUdJTiBY\n    crt: LS0tLS1CRUdJTiBY\n",
      "tc");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "tc: contexts.test.key is missing (want a base64 PEM)");
  r = ParseTalosconfigCredentials("context: prod\ncontexts:\n  test: {}\n  lab: {}\n", "tc");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message, "tc: context \"prod\" not found (have: test, lab)");
  r = ParseTalosconfigCredentials("contexts:\n  test: {}\n", "tc");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "tc: no current context (the file has no \"context:\"; name one)");
  r = ParseTalosconfigCredentials("context: [\n", "tc");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("tc: not a talosconfig (YAML error at line"));
  auto missing = LoadTalosconfigCredentials("/nonexistent/talosconfig");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message, "talosconfig /nonexistent/talosconfig: cannot be read");
}

// A client certificate with another key is refused when the client is built, not at the first call.
TEST(TalosApiClientCreateTest, MismatchedCertificateAndKeyAreRefused) {
  ApiTestPki a = MakeApiTestPki(KeyType::kEd25519);
  ApiTestPki b = MakeApiTestPki(KeyType::kEd25519);
  auto c = TalosApiClient::Create(TalosCredentials{a.ca.crt, a.client.crt, b.client.key});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(c.error().message, HasSubstr("does not belong to the client key"));
  EXPECT_EQ(c.error().message.find("PRIVATE KEY"), std::string::npos);
  auto d = TalosApiClient::Create(TalosCredentials{"not a pem", a.client.crt, a.client.key});
  ASSERT_FALSE(d);
  EXPECT_THAT(d.error().message, HasSubstr("os CA certificate"));
}

// The gzip/tar reader: entries before the file are skipped; no regular file and bad checksums are
// named.
TEST(KubeconfigArchiveTest, TarEntriesAndErrors) {
  testutil::TempDir dir;
  testutil::WriteFile(dir / "sub" / "kubeconfig", "kind: Config\n");
  ASSERT_EQ(
      testutil::Run({"tar", "czf", (dir / "a.tar.gz").string(), "-C", dir.path().string(), "sub"})
          .exit_code,
      0);
  auto k = ExtractSingleFileTarGz(testutil::ReadFile(dir / "a.tar.gz"), "a");
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(*k, "kind: Config\n");
  std::filesystem::create_directories(dir / "empty");
  ASSERT_EQ(
      testutil::Run({"tar", "czf", (dir / "b.tar.gz").string(), "-C", dir.path().string(), "empty"})
          .exit_code,
      0);
  auto none = ExtractSingleFileTarGz(testutil::ReadFile(dir / "b.tar.gz"), "b");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "b: tar archive holds no regular file (want the kubeconfig)");
  testutil::WriteFile(dir / "plain", std::string(600, 'z'));
  ASSERT_EQ(testutil::Run({"gzip", "-k", (dir / "plain").string()}).exit_code, 0);
  auto notar = ExtractSingleFileTarGz(testutil::ReadFile(dir / "plain.gz"), "c");
  ASSERT_FALSE(notar);
  EXPECT_EQ(notar.error().message, "c: not a tar archive (header at byte 0 has a bad checksum)");
}

}  // namespace
}  // namespace ironboot::talos
