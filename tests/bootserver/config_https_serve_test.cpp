// `ironboot serve` with the HTTPS /config listener, as an operator runs it:
// flag errors (exit 2, naming the flag or file), -config-url in served iPXE
// and GRUB scripts, /config answered over TLS, and SIGHUP re-reading the
// certificate. Matchbox mode keeps it small; GitOps mode uses the same handler
// (tests/bootserver/config_https_test.cpp covers access control over HTTPS).

#include <signal.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace ironboot::bootserver {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testutil::HttpGet;
using testutil::Process;
using testutil::TempDir;
using testutil::WaitFor;
using testutil::WriteFile;

const std::string kBinary = IRONBOOT_BINARY;

// A data dir whose profile sends machines to http://10.0.112.2:8080/config.
void WriteDataDir(const fs::path& dir) {
  WriteFile(dir / "groups/g.json",
            R"({"id":"g","profile":"p","selector":{"mac":"52:54:00:ab:cd:ef"}})");
  WriteFile(dir / "profiles/p.json",
            R"({"id":"p","boot":{"kernel":"/assets/k","args":["talos.platform=metal",)"
            R"("talos.config=http://10.0.112.2:8080/config?mac=${mac:hexhyp}","console=ttyS0"]}})");
}

void MakeCert(const fs::path& cert, const fs::path& key) {
  auto r = testutil::Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes", "-keyout", key.string(), "-out",
                          cert.string(), "-days", "2", "-subj", "/CN=ironboot-serve-test",
                          "-addext", "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

// curl over HTTPS trusting only `ca`: the HTTP status, 0 when TLS failed.
int HttpsStatus(int port, const std::string& target, const fs::path& ca) {
  auto r = testutil::Run({"curl", "-s", "-o", "/dev/null", "--max-time", "5", "-w", "%{http_code}",
                          "--cacert", ca.string(),
                          "https://127.0.0.1:" + std::to_string(port) + target});
  try {
    return std::stoi(r.output);
  } catch (...) {
    return 0;
  }
}

class ConfigHttpsServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteDataDir(dir_.path() / "data");
    MakeCert(cert_, key_);
  }
  std::vector<std::string> Args(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {kBinary,      "serve",
                                     "-data-path", (dir_.path() / "data").string(),
                                     "-address",   "127.0.0.1:" + std::to_string(port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  TempDir dir_;
  fs::path cert_ = dir_.path() / "tls.crt";
  fs::path key_ = dir_.path() / "tls.key";
  int port_ = testutil::FreePort();
};

// Bad config-TLS flag combinations and bad certificate/key files exit 2 with
// a message naming the flag or the file; nothing is left listening.
TEST_F(ConfigHttpsServeTest, BadFlagsAndFilesExitTwo) {
  std::string tls = "127.0.0.1:" + std::to_string(testutil::FreePort());
  std::string missing = (dir_.path() / "nope.crt").string();
  std::string garbage = (dir_.path() / "garbage.key").string();
  WriteFile(garbage, "not a key\n");
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  for (const Case& tc : std::vector<Case>{
           {{"-config-tls-address", tls},
            "-config-tls-address, -config-tls-cert-file and "
            "-config-tls-key-file go together"},
           {{"-config-tls-cert-file", cert_.string()}, "go together"},
           {{"-config-tls-only"},
            "-config-tls-only needs -config-tls-address and -config-url https://"},
           {{"-config-tls-address", tls, "-config-tls-cert-file", cert_.string(),
             "-config-tls-key-file", key_.string(), "-config-tls-only", "-config-url",
             "http://10.0.112.2:8080"},
            "-config-tls-only needs"},
           {{"-config-url", "boot.lan:8443"}, "-config-url \"boot.lan:8443\": want the base URL"},
           {{"-config-tls-address", tls, "-config-tls-cert-file", missing, "-config-tls-key-file",
             key_.string()},
            "serve: -config-tls-address " + tls + ": certificate file \"" + missing +
                "\" cannot be read"},
           {{"-config-tls-address", tls, "-config-tls-cert-file", cert_.string(),
             "-config-tls-key-file", garbage},
            "private key file \"" + garbage + "\": not an unencrypted PEM private key"},
       }) {
    auto r = testutil::Run(Args(tc.args));
    EXPECT_EQ(r.exit_code, 2) << tc.want << "\n" << r.output;
    EXPECT_NE(r.output.find(tc.want), std::string::npos) << tc.want << "\n" << r.output;
  }
}

// With -config-url the served iPXE and GRUB scripts send machines to the
// HTTPS listener, which answers /config (here Matchbox mode: 404, no machine
// configs) and nothing else; SIGHUP makes it present a replaced certificate.
TEST_F(ConfigHttpsServeTest, ScriptsCarryHttpsUrlAndSighupReloadsCertificate) {
  int tls_port = testutil::FreePort();
  std::string base = "https://127.0.0.1:" + std::to_string(tls_port);
  Process p(
      Args({"-config-tls-address", "127.0.0.1:" + std::to_string(tls_port), "-config-tls-cert-file",
            cert_.string(), "-config-tls-key-file", key_.string(), "-config-url", base + "/"}));
  ASSERT_TRUE(WaitFor([&] { return HttpGet(port_, "/healthz").status == 200 || !p.Running(); }))
      << p.Output();
  ASSERT_TRUE(p.Running()) << p.Output();
  auto ipxe = HttpGet(port_, "/ipxe?mac=52-54-00-ab-cd-ef");
  EXPECT_NE(ipxe.body.find(" talos.config=" + base + "/config?mac=${mac:hexhyp} console=ttyS0"),
            std::string::npos)
      << ipxe.body;
  EXPECT_EQ(ipxe.body.find("10.0.112.2"), std::string::npos) << ipxe.body;
  auto grub = HttpGet(port_, "/grub?mac=52-54-00-ab-cd-ef");
  EXPECT_NE(grub.body.find("talos.config=" + base + "/config?mac="), std::string::npos)
      << grub.body;

  EXPECT_EQ(HttpsStatus(tls_port, "/config?mac=52-54-00-ab-cd-ef", cert_), 404);
  EXPECT_EQ(HttpsStatus(tls_port, "/healthz", cert_), 404);

  fs::path cert2 = dir_.path() / "new.crt";
  fs::path key2 = dir_.path() / "new.key";
  MakeCert(cert2, key2);
  EXPECT_EQ(HttpsStatus(tls_port, "/config?mac=52-54-00-ab-cd-ef", cert2), 0);
  fs::copy_file(cert2, cert_, fs::copy_options::overwrite_existing);
  fs::copy_file(key2, key_, fs::copy_options::overwrite_existing);
  ASSERT_TRUE(p.Signal(SIGHUP));
  EXPECT_TRUE(WaitFor([&] {
    return HttpsStatus(tls_port, "/config?mac=52-54-00-ab-cd-ef", cert2) == 404;
  })) << p.Output();
  EXPECT_NE(p.Output().find("SIGHUP: reloaded the /config TLS certificate"), std::string::npos)
      << p.Output();
  EXPECT_NE(p.Output().find("scheme=https"), std::string::npos) << p.Output();  // access log
  ASSERT_TRUE(p.Signal(SIGTERM));
  EXPECT_EQ(p.Wait(10s), 0) << p.Output();
}

}  // namespace
}  // namespace ironboot::bootserver
