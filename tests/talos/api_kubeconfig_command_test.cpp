// `ironboot kubeconfig` run as a binary against a real MachineService server
// with mutual TLS (tests/talos/api_test_server.h).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/talos/api_test_server.h"
#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

using ::testing::HasSubstr;

class KubeconfigCommandTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new apitest::ApiTestPki(apitest::MakeApiTestPki(KeyType::kEd25519));
  }
  static void TearDownTestSuite() { delete pki_; }
  void SetUp() override {
    server_ = std::make_unique<apitest::ApiTestServer>(pki_->server, pki_->ca.crt);
    testutil::WriteFile(dir_ / "talosconfig", apitest::TalosconfigYaml(pki_->ca.crt, pki_->client));
    testutil::WriteFile(dir_ / "src" / "kubeconfig", kKubeconfig);
    auto tar = testutil::Run(
        {"tar", "czf", (dir_ / "kc.tar.gz").string(), "-C", (dir_ / "src").string(), "kubeconfig"});
    ASSERT_EQ(tar.exit_code, 0) << tar.output;
    server_->service().kubeconfig_chunks = {testutil::ReadFile(dir_ / "kc.tar.gz")};
  }
  testutil::CommandResult Kubeconfig(std::vector<std::string> args) {
    args.insert(args.begin(), {IRONBOOT_BINARY, "kubeconfig"});
    return testutil::Run(args);
  }

  static constexpr const char* kKubeconfig =
      "apiVersion: v1\nkind: Config\nclusters:\n- name: homelab\n  cluster:\n"
      "    server: https://10.0.4.10:6443\ncurrent-context: admin@homelab\n";
  static apitest::ApiTestPki* pki_;
  testutil::TempDir dir_;
  std::unique_ptr<apitest::ApiTestServer> server_;
};
apitest::ApiTestPki* KubeconfigCommandTest::pki_ = nullptr;

// --out writes the kubeconfig from the node's archive with mode 0600.
TEST_F(KubeconfigCommandTest, WritesKubeconfigWithMode0600) {
  auto out = dir_ / "admin.kubeconfig";
  auto r = Kubeconfig({"--talosconfig", (dir_ / "talosconfig").string(), "--node", server_->node(),
                       "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testutil::ReadFile(out), kKubeconfig);
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(server_->service().Calls(), std::vector<std::string>{"Kubeconfig"});
}

// Without --out the kubeconfig is printed; TALOSCONFIG supplies the file.
TEST_F(KubeconfigCommandTest, PrintsToStdoutAndReadsTalosconfigEnv) {
  auto r = testutil::Run({IRONBOOT_BINARY, "kubeconfig", "-node", server_->node()}, std::nullopt,
                         {{"TALOSCONFIG", (dir_ / "talosconfig").string()}});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, kKubeconfig);
}

// A node that is not listening: exit 1, the message names node and call.
TEST_F(KubeconfigCommandTest, UnreachableNodeIsNamed) {
  std::string dead = "127.0.0.1:" + std::to_string(testutil::FreePort());
  auto r = Kubeconfig({"--talosconfig", (dir_ / "talosconfig").string(), "--node", dead,
                       "--timeout", "2s", "--out", (dir_ / "x").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("Talos API " + dead + " Kubeconfig: node unavailable"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x"));
}

// A client certificate from another cluster: exit 1, the refusal named, no gRPC log noise.
TEST_F(KubeconfigCommandTest, RefusedClientCertificateIsNamed) {
  apitest::ApiTestPki other = apitest::MakeApiTestPki(KeyType::kEd25519);
  testutil::WriteFile(dir_ / "stranger", apitest::TalosconfigYaml(pki_->ca.crt, other.client));
  auto r = Kubeconfig({"--talosconfig", (dir_ / "stranger").string(), "--node", server_->node()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("ironboot kubeconfig: Talos API " + server_->node() +
                                  " Kubeconfig: TLS handshake failed"));
  EXPECT_THAT(r.output, HasSubstr("refused our client certificate"));
  EXPECT_EQ(r.output.find("ssl_transport_security"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("PRIVATE KEY"), std::string::npos);
}

// A corrupt archive from the node: exit 1 with the archive error, no file written.
TEST_F(KubeconfigCommandTest, CorruptArchiveIsAnError) {
  server_->service().kubeconfig_chunks = {"garbage"};
  auto r = Kubeconfig({"--talosconfig", (dir_ / "talosconfig").string(), "--node", server_->node(),
                       "--out", (dir_ / "x").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("Kubeconfig: kubeconfig archive: not a gzip stream"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x"));
}

// Usage errors exit 2 and say what is missing; --help describes every flag and exits 0.
TEST_F(KubeconfigCommandTest, UsageAndHelp) {
  auto r = Kubeconfig({"--node", server_->node()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--talosconfig FILE is required"));
  r = Kubeconfig({"--talosconfig", (dir_ / "talosconfig").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--node ADDR is required"));
  r = Kubeconfig({"--talosconfig", "t", "--node", "n", "--timeout", "soon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--timeout \"soon\" is not a duration"));
  r = Kubeconfig({"--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  r = Kubeconfig({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--talosconfig", "--context", "--node", "--out", "--timeout", "0600"}) {
    EXPECT_THAT(r.output, HasSubstr(flag));
  }
  auto top = testutil::Run({IRONBOOT_BINARY, "--help"});
  EXPECT_THAT(top.output, HasSubstr("kubeconfig"));
}

// A talosconfig that is missing or lacks the named context: exit 1 naming the file.
TEST_F(KubeconfigCommandTest, BadTalosconfigIsNamed) {
  auto r = Kubeconfig({"--talosconfig", (dir_ / "nope").string(), "--node", server_->node()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("talosconfig " + (dir_ / "nope").string() + ": cannot be read"));
  r = Kubeconfig({"--talosconfig", (dir_ / "talosconfig").string(), "--context", "prod", "--node",
                  server_->node()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("context \"prod\" not found (have: test)"));
  EXPECT_TRUE(server_->service().Calls().empty());
}

}  // namespace
}  // namespace ironboot::talos
