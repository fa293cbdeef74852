// `ironboot serve --repo` as an operator runs it: the built binary following a
// cluster repository served by git daemon on 127.0.0.1, push webhooks
// (GitHub, Gitea, GitLab) triggering an immediate fetch, refused deliveries,
// /status, and a restart with git down serving the last good plan.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "controller/webhook.h"
#include "reconcilers/sha512.h"
#include "tests/testutil/git.h"
#include "tests/testutil/testutil.h"

namespace ironboot::controller {
namespace {

namespace fs = std::filesystem;
using testutil::Git;
using testutil::GitEnv;
using testutil::Accepts;
using testutil::GitDaemon;
using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using testutil::HttpGet;
using testutil::HttpRequest;
using testutil::Process;
using testutil::Run;
using testutil::TempDir;
using testutil::WaitFor;
using testutil::WriteFile;

const std::string kBinary = IRONBOOT_BINARY;
const std::string kSecret = "wh-secret-7f3a9c1e5b";  // must never show up in output
constexpr char kCp1Mac[] = "00:23:24:e7:29:40";

std::string RandomBytes(unsigned seed) {
  std::mt19937 rng(seed);
  std::string bytes(4096, '\0');
  for (auto& c : bytes) {
    c = static_cast<char>(rng());
  }
  return bytes;
}

std::string MachineYaml(const std::string& name, const std::string& mac, const std::string& address,
                        const std::string& extra = "") {
  return "apiVersion: ironboot.dev/v1alpha1\nkind: Machine\nmetadata:\n  name: " + name +
         "\nspec:\n  role: controlplane\n  mac: " + mac + "\n  address: " + address + "\n" + extra;
}

// The value of one sample in Prometheus text output: the line for `name`
// whose labels include every `labels` pair. -1 when absent.
double Sample(const std::string& text, const std::string& name,
              const std::map<std::string, std::string>& labels) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with(name + "{") && !line.starts_with(name + " ")) {
      continue;
    }
    bool all = true;
    for (const auto& [k, v] : labels) {
      all = all && line.find(k + "=\"" + v + "\"") != std::string::npos;
    }
    if (all) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return -1;
}

class ServeGitOpsTest : public ::testing::Test {
 protected:
  ServeGitOpsTest() : bare_(tmp_ / "srv" / "cluster.git"), work_(tmp_ / "work") {
    fs::create_directories(bare_);
    Git(bare_, {"init", "-q", "--bare", "-b", "main"});
    fs::create_directories(work_);
    Git(work_, {"init", "-q", "-b", "main"});
    Git(work_, {"remote", "add", "origin", bare_.string()});
    kernel_ = RandomBytes(1);
    std::string initramfs = RandomBytes(2);
    WriteFile(tmp_ / "assets" / "vmlinuz", kernel_);
    WriteFile(tmp_ / "assets" / "initramfs.xz", initramfs);
    WriteFile(tmp_ / "webhook-secret", kSecret + "\n");

    const fs::path root = fs::path(IRONBOOT_SOURCE_DIR) / "examples" / "homelab";
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      if (entry.is_regular_file()) {
        // Machines on loopback (127.0.4.x) instead of 10.0.4.x, so the test
        // can fetch controlplane1's config from its static address.
        std::string text = testutil::ReadFile(entry.path());
        for (size_t at = text.find("10.0.4."); at != std::string::npos;
             at = text.find("10.0.4.", at)) {
          text.replace(at, 7, "127.0.4.");
        }
        files[fs::relative(entry.path(), root).string()] = std::move(text);
      }
    }
    std::string& cluster = files["cluster.yaml"];
    cluster = cluster.substr(0, cluster.find("\n---\n") + 1);
    // CommitChange moves controlplane1 to 127.0.4.<host>: every control-plane
    // address must be in the certSANs, or the configs are rejected.
    std::string& all = files["patches/all.yaml"];
    for (int host = 104; host <= 130; ++host) {
      all.replace(all.find("    - 127.0.4.103"), 0, "    - 127.0.4." + std::to_string(host) + "\n");
    }
    files["releases/v1.11.3.yaml"] =
        "apiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata:\n"
        "  name: talos-v1.11.3-amd64\nspec:\n  version: v1.11.3\n  arch: amd64\n"
        "  kernel:\n    url: file://" +
        (tmp_ / "assets" / "vmlinuz").string() +
        "\n    sha512: " + reconcilers::Sha512Hex(kernel_) + "\n  initramfs:\n    url: file://" +
        (tmp_ / "assets" / "initramfs.xz").string() +
        "\n    sha512: " + reconcilers::Sha512Hex(initramfs) + "\n";
    first_commit_ = Commit(files, "homelab");
    daemon_ = std::make_unique<GitDaemon>(tmp_ / "srv", testutil::FreePort());
  }

  std::string Commit(const std::map<std::string, std::string>& files, const std::string& message) {
    for (const auto& [path, content] : files) {
      WriteFile(work_ / path, content);
    }
    Git(work_, {"add", "-A"});
    Git(work_, {"commit", "-q", "-m", message});
    Git(work_, {"push", "-q", "origin", "HEAD:main"});
    return Git(work_, {"rev-parse", "HEAD"});
  }

  // A commit that gives controlplane1 the address 127.0.4.<host> and the
  // kernel argument ironboot.test=<tag>, visible on /config and /ipxe.
  std::string CommitChange(int host, const std::string& tag) {
    return Commit({{"machines/controlplane1.yaml",
                    MachineYaml("controlplane1", kCp1Mac, "127.0.4." + std::to_string(host) + "/24",
                                "  kernelArgs: [ironboot.test=" + tag + "]\n")}},
                  tag);
  }

  // Starts the binary; waits until it answers /healthz.
  std::unique_ptr<Process> StartServer() {
    port_ = testutil::FreePort();
    auto p = std::make_unique<Process>(std::vector<std::string>{
        kBinary, "serve", "--repo", daemon_->Url("cluster.git"), "--ref", "main", "--state-dir",
        (tmp_ / "state").string(), "-address", "127.0.0.1:" + std::to_string(port_), "--interval",
        "1h", "--webhook-secret-file", (tmp_ / "webhook-secret").string(),
        // Served() polls /config from controlplane1's address faster than
        // the default per-address rate limit.
        "--config-rate", "0"});
    EXPECT_TRUE(WaitFor([&] { return HttpGet(port_, "/healthz").status == 200 || !p->Running(); }))
        << p->Output();
    EXPECT_TRUE(p->Running()) << p->Output();
    return p;
  }

  bool Ready() { return HttpGet(port_, "/readyz").status == 200; }
  std::string Ipxe() { return HttpGet(port_, "/ipxe?mac=00-23-24-e7-29-40").body; }
  // controlplane1's config, fetched from its static address 127.0.4.<host>
  // (/config serves a machine with a static address there only).
  std::string Config(int host = 101) {
    return testutil::HttpGetFrom("127.0.4." + std::to_string(host), port_,
                                 "/config?mac=00-23-24-e7-29-40")
        .body;
  }
  json Status() {
    auto r = HttpGet(port_, "/status");
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }
  std::string Metrics() { return HttpGet(port_, "/metrics").body; }
  testutil::HttpResponse Hook(const std::map<std::string, std::string>& headers,
                              const std::string& body) {
    auto h = headers;
    h["Content-Type"] = "application/json";
    return HttpRequest(port_, "POST", "/hooks/git", h, body);
  }
  // Waits until /ipxe carries ironboot.test=<tag> and /config the address.
  bool Served(const std::string& tag, int host, std::chrono::milliseconds timeout = 5s) {
    return WaitFor(
        [&] {
          return Ipxe().find("ironboot.test=" + tag) != std::string::npos &&
                 Config(host).find("127.0.4." + std::to_string(host) + "/24") !=
                     std::string::npos;
        },
        timeout);
  }

  static constexpr char kPushMain[] = R"({"ref":"refs/heads/main","after":"0000"})";

  TempDir tmp_;
  fs::path bare_;
  fs::path work_;
  std::string kernel_;
  std::string first_commit_;
  std::unique_ptr<GitDaemon> daemon_;
  int port_ = 0;
};

// A good GitHub, Gitea and GitLab delivery each gets 202 and the pushed commit
// is served on /ipxe and /config without waiting for the one-hour interval.
TEST_F(ServeGitOpsTest, GoodWebhooksServeThePushAtOnce) {
  auto server = StartServer();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << server->Output();
  EXPECT_THAT(Ipxe(), HasSubstr("/assets/talos/"));
  EXPECT_THAT(Config(), HasSubstr("hostname: controlplane1"));

  const std::string body = kPushMain;
  const std::string hmac = HmacSha256Hex(kSecret, body);
  struct Delivery {
    std::string provider;
    std::map<std::string, std::string> headers;
  };
  std::vector<Delivery> deliveries = {
      {"github", {{"X-GitHub-Event", "push"}, {"X-Hub-Signature-256", "sha256=" + hmac}}},
      {"gitea", {{"X-Gitea-Event", "push"}, {"X-Gitea-Signature", hmac}}},
      {"gitlab", {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", kSecret}}},
  };
  int host = 111;
  for (const auto& d : deliveries) {
    CommitChange(host, d.provider);
    auto r = Hook(d.headers, body);
    EXPECT_EQ(r.status, 202) << d.provider << ": " << r.body;
    EXPECT_TRUE(Served(d.provider, host)) << d.provider << "\n"
                                          << Ipxe() << "\n"
                                          << server->Output();
    ++host;
  }
  EXPECT_EQ(Status()["served"]["revision"], "main@sha1:" + Git(work_, {"rev-parse", "HEAD"}));
  EXPECT_TRUE(WaitFor([&] {
    return Sample(Metrics(), "ironboot_http_requests_total",
                  {{"handler", "hooks"}, {"code", "202"}}) == 3;
  })) << Metrics();
  EXPECT_THAT(server->Output(), Not(HasSubstr(kSecret)));
}

// Bad and missing signatures get 401 with the reason, are counted under
// handler="hooks",code="401", and trigger no fetch; the secret appears in no
// response, metric or log line.
TEST_F(ServeGitOpsTest, BadAndMissingSignaturesRefused) {
  auto server = StartServer();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << server->Output();
  CommitChange(120, "unseen");

  const std::string body = kPushMain;
  std::vector<std::map<std::string, std::string>> bad = {
      {{"X-GitHub-Event", "push"},
       {"X-Hub-Signature-256", "sha256=" + HmacSha256Hex("wrong", body)}},
      {{"X-GitHub-Event", "push"}},
      {{"X-Gitea-Event", "push"}, {"X-Gitea-Signature", HmacSha256Hex(kSecret, body + " ")}},
      {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", kSecret + "x"}},
      {},
  };
  for (const auto& headers : bad) {
    auto r = Hook(headers, body);
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_THAT(r.body, Not(HasSubstr(kSecret)));
  }
  EXPECT_THAT(Hook({{"X-GitHub-Event", "push"}}, body).body, HasSubstr("github"));
  // A request is counted as its response is written: poll, do not race it.
  EXPECT_TRUE(WaitFor([&] {
    return Sample(Metrics(), "ironboot_http_requests_total",
                  {{"handler", "hooks"}, {"code", "401"}}) == 6;
  })) << Metrics();
  EXPECT_THAT(Ipxe(), Not(HasSubstr("ironboot.test=unseen")));
  EXPECT_EQ(Status()["served"]["revision"], "main@sha1:" + first_commit_);

  // A good delivery after them brings the commit (and exactly one more fetch).
  auto r = Hook({{"X-GitHub-Event", "push"},
                 {"X-Hub-Signature-256", "sha256=" + HmacSha256Hex(kSecret, body)}},
                body);
  EXPECT_EQ(r.status, 202);
  EXPECT_TRUE(Served("unseen", 120));
  std::string metrics = Metrics();
  EXPECT_EQ(Sample(metrics, "ironboot_source_fetch_total", {{"result", "ok"}}), 2);
  EXPECT_THAT(metrics, Not(HasSubstr(kSecret)));
  EXPECT_THAT(Status().dump(), Not(HasSubstr(kSecret)));
  EXPECT_THAT(server->Output(), Not(HasSubstr(kSecret)));
}

// A correctly signed push to another branch is acknowledged as ignored and
// does not bring that branch's content.
TEST_F(ServeGitOpsTest, PushToAnotherBranchIgnored) {
  auto server = StartServer();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << server->Output();
  Git(work_, {"checkout", "-q", "-b", "feature"});
  WriteFile(work_ / "machines/controlplane1.yaml",
            MachineYaml("controlplane1", kCp1Mac, "127.0.4.101/24",
                        "  kernelArgs: [ironboot.test=feature]\n"));
  Git(work_, {"commit", "-q", "-am", "feature"});
  Git(work_, {"push", "-q", "origin", "HEAD:feature"});

  const std::string body = R"({"ref":"refs/heads/feature"})";
  auto r = Hook({{"X-GitHub-Event", "push"},
                 {"X-Hub-Signature-256", "sha256=" + HmacSha256Hex(kSecret, body)}},
                body);

  EXPECT_EQ(r.status, 202);
  EXPECT_THAT(r.body, HasSubstr("ignored"));
  EXPECT_THAT(r.body, HasSubstr("refs/heads/feature"));
  EXPECT_TRUE(WaitFor([&] {
    return server->Output().find("ignored push to refs/heads/feature") != std::string::npos;
  }));
  EXPECT_THAT(Ipxe(), Not(HasSubstr("ironboot.test=feature")));
  EXPECT_EQ(Sample(Metrics(), "ironboot_source_fetch_total", {{"result", "ok"}}), 1);
}

// /status is JSON with the source, the served revision and machines, and,
// after a bad push, the rejected revision's file:line:col errors while the
// good revision keeps serving.
TEST_F(ServeGitOpsTest, StatusJson) {
  auto server = StartServer();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << server->Output();
  auto response = HttpGet(port_, "/status");
  EXPECT_EQ(response.headers["content-type"], "application/json");
  json status = Status();
  ASSERT_TRUE(status.is_object()) << response.body;
  EXPECT_THAT(status["source"]["description"].get<std::string>(),
              HasSubstr(daemon_->Url("cluster.git")));
  EXPECT_EQ(status["source"]["interval_seconds"], 3600);
  EXPECT_EQ(status["source"]["last_fetch"]["result"], "ok");
  EXPECT_TRUE(status["source"]["last_success"].is_string());
  EXPECT_EQ(status["served"]["revision"], "main@sha1:" + first_commit_);
  EXPECT_TRUE(status["served"]["published_at"].is_string());
  ASSERT_EQ(status["served"]["machines"].size(), 3u);
  EXPECT_EQ(status["served"]["machines"][2]["name"], "controlplane3");
  EXPECT_EQ(status["served"]["machines"][2]["release"], "v1.11.3");
  EXPECT_EQ(status["served"]["machines"][2]["address"], "127.0.4.103/24");
  // This client is on loopback, so it gets the local view with MACs.
  EXPECT_TRUE(status["served"]["machines"][2]["macs"].is_array());
  EXPECT_TRUE(status["rejected"].is_null());
  EXPECT_TRUE(status["held_back"].is_array());

  std::string bad = Commit(
      {{"machines/controlplane1.yaml", MachineYaml("controlplane1", kCp1Mac, "10.9.9.9/24")}},
      "address outside the subnet");
  const std::string body = kPushMain;
  EXPECT_EQ(Hook({{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", kSecret}}, body).status, 202);
  ASSERT_TRUE(WaitFor([&] { return Status()["rejected"].is_object(); })) << server->Output();
  status = Status();
  EXPECT_EQ(status["rejected"]["revision"], "main@sha1:" + bad);
  ASSERT_FALSE(status["rejected"]["errors"].empty());
  EXPECT_THAT(status["rejected"]["errors"][0].get<std::string>(),
              ContainsRegex("^machines/controlplane1\\.yaml:[0-9]+:[0-9]+: spec\\.address: "));
  EXPECT_EQ(status["served"]["revision"], "main@sha1:" + first_commit_);
  EXPECT_THAT(Config(), HasSubstr("127.0.4.101/24"));
  EXPECT_GT(Sample(Metrics(), "ironboot_manifest_errors", {}), 0);
}

// A commit with a file whose name is not UTF-8 and whose YAML is broken is
// rejected with an error naming the file (invalid bytes shown as U+FFFD);
// the process stays up (the GitOps thread died of nlohmann's type_error.316
// and took the boot server with it), /status stays valid JSON, the good
// revision keeps serving and no internal error was counted.
TEST_F(ServeGitOpsTest, NonUtf8FileNameWithBrokenYamlIsRejectedNotFatal) {
  auto server = StartServer();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << server->Output();
  std::string bad = Commit({{"machines/bad\xff\xfe.yaml", "kind: Machine\nspec: [unclosed\n"}},
                           "a file name that is not UTF-8");
  const std::string body = kPushMain;
  EXPECT_EQ(Hook({{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", kSecret}}, body).status, 202);
  ASSERT_TRUE(WaitFor([&] { return !server->Running() || Status()["rejected"].is_object(); }))
      << server->Output();
  ASSERT_TRUE(server->Running()) << server->Output();
  json status = Status();
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(status["rejected"]["revision"], "main@sha1:" + bad);
  ASSERT_FALSE(status["rejected"]["errors"].empty());
  EXPECT_THAT(status["rejected"]["errors"].dump(), HasSubstr("machines/bad\ufffd\ufffd.yaml"));
  EXPECT_EQ(status["served"]["revision"], "main@sha1:" + first_commit_);
  EXPECT_THAT(Ipxe(), HasSubstr("/assets/talos/"));
  EXPECT_EQ(Sample(Metrics(), "ironboot_internal_errors_total", {{"component", "gitops"}}), 0);
}

// After a restart with git down, the binary serves the last good plan from
// its state dir (/readyz 200, /ipxe, /config and the kernel answer) before git
// answers; when git is back a webhook brings the newest commit.
TEST_F(ServeGitOpsTest, RestartWithRemoteDownServesLastGoodPlan) {
  {
    auto server = StartServer();
    ASSERT_TRUE(WaitFor([&] { return Ready(); })) << server->Output();
    server->Signal(SIGTERM);
    ASSERT_TRUE(server->Wait(10s).has_value());
  }
  daemon_->Kill();

  auto server = StartServer();
  EXPECT_TRUE(Ready()) << "ready at once from the saved plan\n" << server->Output();
  EXPECT_THAT(Ipxe(), HasSubstr("/assets/talos/"));
  EXPECT_THAT(Config(), HasSubstr("hostname: controlplane1"));
  std::string ipxe = Ipxe();
  size_t at = ipxe.find("/assets/talos/");
  ASSERT_NE(at, std::string::npos) << ipxe;
  std::string kernel_path = ipxe.substr(at, ipxe.find_first_of(" \n", at) - at);
  EXPECT_EQ(HttpGet(port_, kernel_path).body, kernel_) << kernel_path;
  EXPECT_EQ(Status()["served"]["revision"], "main@sha1:" + first_commit_);
  ASSERT_TRUE(WaitFor([&] { return Status()["source"]["last_fetch"]["result"] == "error"; }))
      << server->Output();
  EXPECT_TRUE(Ready());

  CommitChange(130, "back");
  daemon_->Start();
  const std::string body = kPushMain;
  EXPECT_EQ(Hook({{"X-GitHub-Event", "push"},
                  {"X-Hub-Signature-256", "sha256=" + HmacSha256Hex(kSecret, body)}},
                 body)
                .status,
            202);
  EXPECT_TRUE(Served("back", 130)) << server->Output();
  EXPECT_THAT(server->Output(), Not(HasSubstr(kSecret)));
}

}  // namespace
}  // namespace ironboot::controller
