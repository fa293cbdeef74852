// The HTTPS /config listener in GitOps mode, through the built binary as an
// operator runs it: serve follows a file:// copy of examples/homelab with
// -config-tls-* -config-url -config-tls-only -config-token; a machine's iPXE
// script (plain listener) sends it to the https URL with a token, and
// the config is served there, only there, only with that token.

#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "tests/testutil/git.h"
#include "tests/testutil/testutil.h"

namespace ironboot::bootserver {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testutil::Git;
using testutil::HttpGet;
using testutil::Process;
using testutil::TempDir;
using testutil::WaitFor;
using testutil::WriteFile;

const std::string kBinary = IRONBOOT_BINARY;
constexpr char kCp1Mac[] = "00-23-24-e7-29-40";

std::string Sha512(const fs::path& file) {
  auto r = testutil::Run({"sha512sum", file.string()});
  return r.output.substr(0, 128);
}

struct Curl {
  int status = 0;
  std::string body;
};

// controlplane1's address once the homelab is moved to loopback: /config
// is served to a machine at its static address only.
constexpr char kCp1Address[] = "127.0.4.101";

// GET over HTTPS trusting only `ca`, from controlplane1's address.
Curl HttpsGet(const std::string& url, const fs::path& ca) {
  auto r = testutil::Run({"curl", "-sS", "--max-time", "10", "--interface", kCp1Address,
                          "--cacert", ca.string(), "-w", "\n%{http_code}", url});
  Curl out;
  size_t nl = r.output.rfind('\n');
  if (nl != std::string::npos) {
    try {
      out.status = std::stoi(r.output.substr(nl + 1));
    } catch (...) {
    }
    out.body = r.output.substr(0, nl);
  }
  return out;
}

// A machine follows its iPXE script's talos.config= URL to the HTTPS listener
// and gets its config with the token (again on a retry); plain /config and
// no token are refused; the Cluster's bootServerURL is not in the script.
TEST(ConfigHttpsGitOpsTest, MachineFollowsScriptToHttpsListener) {
  TempDir tmp;
  const fs::path bare = tmp.path() / "cluster.git";
  const fs::path work = tmp.path() / "work";
  fs::create_directories(bare);
  Git(bare, {"init", "-q", "--bare", "-b", "main"});
  fs::create_directories(work);
  Git(work, {"init", "-q", "-b", "main"});
  Git(work, {"remote", "add", "origin", bare.string()});
  WriteFile(tmp.path() / "assets/vmlinuz", std::string(4096, 'k'));
  WriteFile(tmp.path() / "assets/initramfs.xz", std::string(4096, 'i'));
  const fs::path root = fs::path(IRONBOOT_SOURCE_DIR) / "examples/homelab";
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) {
      // Machines on loopback (127.0.4.x) instead of 10.0.4.x, so this test
      // can send from controlplane1's address.
      std::string text = testutil::ReadFile(entry.path());
      for (size_t at = text.find("10.0.4."); at != std::string::npos;
           at = text.find("10.0.4.", at)) {
        text.replace(at, 7, "127.0.4.");
      }
      WriteFile(work / fs::relative(entry.path(), root), text);
    }
  }
  // The release from local files instead of GitHub (no internet here).
  std::string cluster = testutil::ReadFile(work / "cluster.yaml");
  WriteFile(work / "cluster.yaml", cluster.substr(0, cluster.find("\n---\n") + 1));
  WriteFile(work / "releases/v1.11.3.yaml",
            "apiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata:\n"
            "  name: talos-v1.11.3-amd64\nspec:\n  version: v1.11.3\n  arch: amd64\n"
            "  kernel:\n    url: file://" +
                (tmp.path() / "assets/vmlinuz").string() +
                "\n    sha512: " + Sha512(tmp.path() / "assets/vmlinuz") +
                "\n  initramfs:\n    url: file://" + (tmp.path() / "assets/initramfs.xz").string() +
                "\n    sha512: " + Sha512(tmp.path() / "assets/initramfs.xz") + "\n");
  Git(work, {"add", "-A"});
  Git(work, {"commit", "-q", "-m", "homelab"});
  Git(work, {"push", "-q", "origin", "HEAD:main"});

  const fs::path cert = tmp.path() / "tls.crt";
  const fs::path key = tmp.path() / "tls.key";
  auto made = testutil::Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                             "ec_paramgen_curve:P-256", "-nodes", "-keyout", key.string(), "-out",
                             cert.string(), "-days", "2", "-subj", "/CN=ironboot", "-addext",
                             "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(made.exit_code, 0) << made.output;

  int port = testutil::FreePort();
  int tls_port = testutil::FreePort();
  const std::string base = "https://127.0.0.1:" + std::to_string(tls_port);
  Process server({kBinary,
                  "serve",
                  "-repo",
                  "file://" + bare.string(),
                  "-state-dir",
                  (tmp.path() / "state").string(),
                  "-address",
                  "127.0.0.1:" + std::to_string(port),
                  "-interval",
                  "1h",
                  "-config-rate",
                  "0",
                  "-config-token",
                  "-config-tls-address",
                  "127.0.0.1:" + std::to_string(tls_port),
                  "-config-tls-cert-file",
                  cert.string(),
                  "-config-tls-key-file",
                  key.string(),
                  "-config-url",
                  base,
                  "-config-tls-only"});
  ASSERT_TRUE(
      WaitFor([&] { return HttpGet(port, "/readyz").status == 200 || !server.Running(); }, 30s))
      << server.Output();
  ASSERT_TRUE(server.Running()) << server.Output();

  auto ipxe = testutil::HttpGetFrom(kCp1Address, port, std::string("/ipxe?mac=") + kCp1Mac);
  ASSERT_EQ(ipxe.status, 200) << ipxe.body;
  const std::string want = "talos.config=" + base + "/config?mac=${mac:hexhyp}&token=";
  auto at = ipxe.body.find(want);
  ASSERT_NE(at, std::string::npos) << ipxe.body;
  EXPECT_EQ(ipxe.body.find("10.0.112.2:8080/config"), std::string::npos) << ipxe.body;
  std::string token = ipxe.body.substr(at + want.size(), 32);

  // What iPXE expands ${mac:hexhyp} to, then Talos fetches.
  std::string url = base + "/config?mac=" + kCp1Mac;
  EXPECT_EQ(testutil::HttpGetFrom(kCp1Address, port,
                                  std::string("/config?mac=") + kCp1Mac + "&token=" + token)
                .status,
            403);
  EXPECT_EQ(HttpsGet(url, cert).status, 403);  // no token
  Curl config = HttpsGet(url + "&token=" + token, cert);
  EXPECT_EQ(config.status, 200);
  EXPECT_NE(config.body.find("type: controlplane"), std::string::npos)
      << config.body.substr(0, 200);
  EXPECT_EQ(HttpsGet(url + "&token=" + token, cert).status, 200);  // a retry

  auto metrics = HttpGet(port, "/metrics").body;
  EXPECT_NE(metrics.find("ironboot_config_fetch_total{result=\"denied_tls\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("ironboot_config_fetch_total{result=\"served\"} 2"), std::string::npos);
}

}  // namespace
}  // namespace ironboot::bootserver
