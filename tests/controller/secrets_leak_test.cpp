// Issue 5: secret material never appears in logs, metrics, /status, `plan`
// output or error messages. A full run of the built binary with a generated
// secrets bundle (serve -secrets-file following a file:// repo of
// examples/homelab without base configs) captures every output and searches
// it for every key, token and secret of the bundle.

#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "controller/gitops.h"
#include "manifests/repo_dir.h"
#include "reconcilers/sha512.h"
#include "talos/secrets_bundle.h"
#include "tests/testutil/git.h"
#include "tests/testutil/testutil.h"

namespace ironboot::controller {
namespace {

namespace fs = std::filesystem;
using testutil::Git;
using testutil::GitEnv;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testutil::HttpGet;
using testutil::HttpRequest;
using testutil::Process;

using testutil::TempDir;
using testutil::WaitFor;
using testutil::WriteFile;

const std::string kBinary = IRONBOOT_BINARY;
constexpr char kCp1Mac[] = "00-23-24-e7-29-40";

// One bundle per test binary (generation takes seconds): file and secrets.
struct Bundle {
  fs::path file;
  std::vector<std::string> needles;  // every secret string, plus each PEM body line
  talos::SecretsBundle secrets;
};

const Bundle& TheBundle() {
  static TempDir dir;
  static const Bundle bundle = [] {
    Bundle b;
    b.file = dir.path() / "secrets.yaml";
    auto r = testutil::Run({kBinary, "secrets", "gen", "--out", b.file.string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto loaded = talos::LoadSecretsBundleFile(b.file.string());
    EXPECT_TRUE(loaded.has_value()) << (loaded ? "" : loaded.error().message);
    if (loaded) {
      b.secrets = *loaded;
      for (const auto& s : talos::SecretStrings(*loaded)) {
        b.needles.push_back(s);
        // A PEM leaked in part (one base64 line of its body) is a leak too.
        std::istringstream lines(s);
        std::string line;
        while (std::getline(lines, line)) {
          if (line.size() >= 32 && !line.starts_with("-----")) {
            b.needles.push_back(line);
          }
        }
      }
    }
    return b;
  }();
  return bundle;
}

// The first secret of the bundle `text` contains, "" when none.
std::string FindSecret(const std::string& text) {
  for (const auto& needle : TheBundle().needles) {
    if (text.find(needle) != std::string::npos) {
      return needle.substr(0, 12) + "...";
    }
  }
  return "";
}

class SecretsLeakTest : public ::testing::Test {
 protected:
  SecretsLeakTest() : bare_(tmp_.path() / "cluster.git"), work_(tmp_.path() / "work") {
    fs::create_directories(bare_);
    Git(bare_, {"init", "-q", "--bare", "-b", "main"});
    fs::create_directories(work_);
    Git(work_, {"init", "-q", "-b", "main"});
    Git(work_, {"remote", "add", "origin", bare_.string()});
    const std::string kernel(4096, 'k');
    const std::string initramfs(4096, 'i');
    WriteFile(tmp_.path() / "assets" / "vmlinuz", kernel);
    WriteFile(tmp_.path() / "assets" / "initramfs.xz", initramfs);
    const fs::path root = fs::path(IRONBOOT_SOURCE_DIR) / "examples" / "homelab";
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      if (entry.is_regular_file()) {
        // Machines on loopback (127.0.4.x) instead of 10.0.4.x, so the test
        // can fetch controlplane1's config from its static address.
        std::string text = testutil::ReadFile(entry.path());
        for (size_t at = text.find("10.0.4."); at != std::string::npos;
             at = text.find("10.0.4.", at)) {
          text.replace(at, 7, "127.0.4.");
        }
        files_[fs::relative(entry.path(), root).string()] = std::move(text);
      }
    }
    // No base configs in the repo: they come from the bundle.
    files_.erase("controlplane.yaml");
    files_.erase("worker.yaml");
    std::string& cluster = files_["cluster.yaml"];
    cluster = cluster.substr(0, cluster.find("\n---\n") + 1);
    files_["releases/v1.11.3.yaml"] =
        "apiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata:\n"
        "  name: talos-v1.11.3-amd64\nspec:\n  version: v1.11.3\n  arch: amd64\n"
        "  kernel:\n    url: file://" +
        (tmp_.path() / "assets" / "vmlinuz").string() +
        "\n    sha512: " + reconcilers::Sha512Hex(kernel) + "\n  initramfs:\n    url: file://" +
        (tmp_.path() / "assets" / "initramfs.xz").string() +
        "\n    sha512: " + reconcilers::Sha512Hex(initramfs) + "\n";
    WriteRepo(work_, files_);
    Git(work_, {"add", "-A"});
    Git(work_, {"commit", "-q", "-m", "homelab"});
    Git(work_, {"push", "-q", "origin", "HEAD:main"});
    WriteFile(tmp_.path() / "webhook-secret", "wh-secret-leak-test\n");
  }

  static void WriteRepo(const fs::path& dir, const std::map<std::string, std::string>& files) {
    for (const auto& [path, content] : files) {
      WriteFile(dir / path, content);
    }
  }

  TempDir tmp_;
  fs::path bare_;
  fs::path work_;
  std::map<std::string, std::string> files_;
};

// A full run (serve with -secrets-file and debug logs; /ipxe, /config,
// /status, /metrics, a badly signed webhook, a commit rejected by the schema
// check, plan and validate with --secrets) never shows a key, token or secret
// of the bundle anywhere but in the /config body.
TEST_F(SecretsLeakTest, NoSecretInAnyOutputOfAFullRun) {
  const Bundle& bundle = TheBundle();
  ASSERT_FALSE(bundle.needles.empty());
  std::vector<std::pair<std::string, std::string>> captured;  // (what, text)

  int port = testutil::FreePort();
  Process server({kBinary, "serve", "--repo", "file://" + bare_.string(), "--ref", "main",
                  "--secrets-file", bundle.file.string(), "--state-dir",
                  (tmp_.path() / "state").string(), "-address", "127.0.0.1:" + std::to_string(port),
                  "--interval", "1h", "--log-level", "debug", "--webhook-secret-file",
                  (tmp_.path() / "webhook-secret").string()});
  ASSERT_TRUE(
      WaitFor([&] { return HttpGet(port, "/readyz").status == 200 || !server.Running(); }, 20s))
      << server.Output();

  // /ipxe, then /config from controlplane1's address: the config is
  // generated from the bundle (it may hold secrets; its body is not searched).
  auto ipxe = testutil::HttpGetFrom("127.0.4.101", port, std::string("/ipxe?mac=") + kCp1Mac);
  EXPECT_EQ(ipxe.status, 200) << ipxe.body;
  captured.emplace_back("/ipxe", ipxe.body);
  auto config = testutil::HttpGetFrom("127.0.4.101", port, std::string("/config?mac=") + kCp1Mac);
  EXPECT_EQ(config.status, 200);
  EXPECT_THAT(config.body, HasSubstr(bundle.secrets.trustd_token))
      << "the served config is not generated from -secrets-file";
  auto unknown = HttpGet(port, "/config?mac=00-00-00-00-00-01");
  captured.emplace_back("/config of an unknown MAC", unknown.body);
  captured.emplace_back("/status", HttpGet(port, "/status").body);

  // A webhook with a bad signature.
  auto hook = HttpRequest(port, "POST", "/hooks/git",
                          {{"Content-Type", "application/json"},
                           {"X-GitHub-Event", "push"},
                           {"X-Hub-Signature-256", "sha256=00"}},
                          R"({"ref":"refs/heads/main"})");
  EXPECT_EQ(hook.status, 401);
  captured.emplace_back("webhook response", hook.body);

  // A commit whose rendered configs fail the Talos schema is rejected, with
  // the machine and the path named.
  auto bad = files_;
  auto& all = bad["patches/all.yaml"];
  all.replace(all.find("machine:\n"), 9, "machine:\n  notATalosField: true\n");
  WriteRepo(work_, bad);
  Git(work_, {"commit", "-q", "-am", "bad"});
  Git(work_, {"push", "-q", "origin", "HEAD:main"});
  auto good_hook_body = std::string(R"({"ref":"refs/heads/main"})");
  // Trigger through the status-visible interval-free path: restart-free poll.
  nlohmann::json status;
  ASSERT_TRUE(WaitFor(
      [&] {
        HttpRequest(port, "POST", "/hooks/git",
                    {{"Content-Type", "application/json"},
                     {"X-Gitlab-Event", "Push Hook"},
                     {"X-Gitlab-Token", "wh-secret-leak-test"}},
                    good_hook_body);
        status = nlohmann::json::parse(HttpGet(port, "/status").body, nullptr, false);
        return status.is_object() && status["rejected"].is_object();
      },
      20s))
      << server.Output();
  std::string rejected = status["rejected"].dump();
  EXPECT_THAT(rejected, HasSubstr("controlplane1"));
  EXPECT_THAT(rejected, HasSubstr("notATalosField"));
  captured.emplace_back("/status after the rejected commit", HttpGet(port, "/status").body);
  captured.emplace_back("/metrics", HttpGet(port, "/metrics").body);
  // The good plan is still served.
  EXPECT_THAT(HttpGet(port, std::string("/ipxe?mac=") + kCp1Mac).body, HasSubstr("kernel"));
  captured.emplace_back("serve log", server.Output());

  // plan and validate with --secrets, on a good change and on the bad repo.
  fs::path old_dir = tmp_.path() / "old";
  fs::path new_dir = tmp_.path() / "new";
  WriteRepo(old_dir, files_);
  auto changed = files_;
  changed["machines/controlplane1.yaml"] += "  kernelArgs: [ironboot.test=1]\n";
  WriteRepo(new_dir, changed);
  auto plan = testutil::Run({kBinary, "plan", new_dir.string(), "--against", old_dir.string(),
                             "--secrets", bundle.file.string()});
  EXPECT_EQ(plan.exit_code, 2) << plan.output;
  EXPECT_THAT(plan.output, HasSubstr("controlplane1"));
  captured.emplace_back("plan", plan.output);
  auto plan_bad = testutil::Run({kBinary, "plan", work_.string(), "--against", old_dir.string(),
                                 "--secrets", bundle.file.string()});
  EXPECT_EQ(plan_bad.exit_code, 1) << plan_bad.output;
  captured.emplace_back("plan of the bad repo", plan_bad.output);
  auto validate =
      testutil::Run({kBinary, "validate", work_.string(), "--secrets", bundle.file.string()});
  EXPECT_EQ(validate.exit_code, 1) << validate.output;
  EXPECT_THAT(validate.output, HasSubstr("machine controlplane1"));
  captured.emplace_back("validate of the bad repo", validate.output);

  for (const auto& [what, text] : captured) {
    EXPECT_EQ(FindSecret(text), "") << what << " contains a secret of the bundle";
  }
}

// validate/render/plan --secrets and serve -secrets-file with a broken bundle
// fail naming the file and the field; no secret in the message.
TEST_F(SecretsLeakTest, BrokenBundleNamedWithItsField) {
  std::string text = testutil::ReadFile(TheBundle().file);
  auto at = text.find("trustdinfo:");
  ASSERT_NE(at, std::string::npos) << "bundle layout changed";
  fs::path broken = tmp_.path() / "broken-secrets.yaml";
  WriteFile(broken, text.substr(0, at));  // drops trustdinfo and everything after it
  fs::path repo = tmp_.path() / "repo";
  WriteRepo(repo, files_);
  std::vector<std::vector<std::string>> commands = {
      {kBinary, "validate", repo.string(), "--secrets", broken.string()},
      {kBinary, "render", repo.string(), "--out", (tmp_.path() / "out").string(), "--secrets",
       broken.string()},
      {kBinary, "plan", repo.string(), "--against", repo.string(), "--secrets", broken.string()},
      {kBinary, "serve", "--repo", "file://" + bare_.string(), "--secrets-file", broken.string(),
       "--state-dir", (tmp_.path() / "state").string(), "-address", "127.0.0.1:0"},
  };
  for (const auto& argv : commands) {
    auto r = testutil::Run(argv);
    EXPECT_NE(r.exit_code, 0) << argv[1] << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr(broken.string())) << argv[1];
    EXPECT_THAT(r.output, HasSubstr("trustdinfo")) << argv[1] << ": " << r.output;
    EXPECT_EQ(FindSecret(r.output), "") << argv[1];
  }
}

// `ironboot render --secrets` writes generated configs for a repo with no
// base config files.
TEST_F(SecretsLeakTest, RenderWithSecretsNeedsNoBaseConfigFiles) {
  fs::path repo = tmp_.path() / "repo";
  WriteRepo(repo, files_);
  auto without = testutil::Run({kBinary, "validate", repo.string()});
  EXPECT_EQ(without.exit_code, 1) << without.output;
  EXPECT_THAT(without.output, HasSubstr("spec.baseConfigs.controlplane"));
  fs::path out = tmp_.path() / "out";
  auto r = testutil::Run({kBinary, "render", repo.string(), "--out", out.string(), "--secrets",
                          TheBundle().file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(testutil::ReadFile(out / "generic" / "controlplane1.yaml"),
              HasSubstr(TheBundle().secrets.trustd_token));
  EXPECT_EQ(FindSecret(r.output), "");
}

}  // namespace
}  // namespace ironboot::controller

namespace ironboot::controller {
namespace {

manifests::RepoFiles HomelabFiles() {
  auto files = manifests::ReadRepoDir(std::string(IRONBOOT_SOURCE_DIR) + "/examples/homelab");
  EXPECT_TRUE(files.has_value());
  return files ? *files : manifests::RepoFiles{};
}

// RenderRevision rejects a config the Talos schema refuses, naming the
// machine, the instance path and the schema path; never a config value.
TEST(RenderRevisionTest, SchemaErrorNamesMachineAndPath) {
  auto files = HomelabFiles();
  auto& all = files["patches/all.yaml"];
  all.replace(all.find("machine:\n"), 9, "machine:\n  notATalosField: true\n");
  auto r = RenderRevision(files, {}, nullptr);
  ASSERT_FALSE(r.has_value());
  std::string text = r.error().ToString();
  EXPECT_THAT(text, HasSubstr("machine controlplane1 (Talos v1.11.3): invalid for Talos v1.11: "
                              "document 1: /machine/notATalosField"));
  EXPECT_THAT(text, HasSubstr("(schema #/$defs/v1alpha1.MachineConfig/additionalProperties)"));
  EXPECT_THAT(text, Not(HasSubstr("faketo.kenplaceholder00")));
}

// Configs identical to the served plan's are not validated again; a changed
// one is.
TEST(RenderRevisionTest, UnchangedConfigsSkipValidation) {
  auto files = HomelabFiles();
  auto first = RenderRevision(files, {}, nullptr);
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  EXPECT_EQ(first->configs_validated, 3u);
  auto again = RenderRevision(files, {}, nullptr, &first->plan);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->configs_validated, 0u);
  EXPECT_EQ(again->configs_unchanged, 3u);
  files["machines/controlplane1.yaml"] += "  installDisk: /dev/sdb\n";
  auto changed = RenderRevision(files, {}, nullptr, &first->plan);
  ASSERT_TRUE(changed.has_value()) << changed.error().ToString();
  EXPECT_EQ(changed->configs_validated, 1u);
  EXPECT_EQ(changed->configs_unchanged, 2u);
}

}  // namespace
}  // namespace ironboot::controller

namespace ironboot::controller {
namespace {

// (This fixture has the repo and bundle serve needs to run its upgrade
// reconciler.) A corrupt rollout/state.json used to make serve exit, so
// nothing booted: now serve boots machines, the reconciler is off, and the
// reason naming the file is in the log, /status, `ironboot status`, /readyz
// (still 200) and ironboot_reconciler_disabled{reconciler="upgrade"}.
TEST_F(SecretsLeakTest, CorruptRolloutStateKeepsBootingWithTheReconcilerOff) {
  const Bundle& bundle = TheBundle();
  const fs::path state = tmp_.path() / "state";
  WriteFile(state / "rollout" / "state.json", "{\"format\": 1, \"machines\": [trunc");
  int port = testutil::FreePort();
  Process server({kBinary, "serve", "--repo", "file://" + bare_.string(), "--ref", "main",
                  "--secrets-file", bundle.file.string(), "--state-dir", state.string(), "-address",
                  "127.0.0.1:" + std::to_string(port), "--interval", "1h"});
  ASSERT_TRUE(
      WaitFor([&] { return HttpGet(port, "/readyz").status == 200 || !server.Running(); }, 20s))
      << server.Output();
  ASSERT_TRUE(server.Running()) << server.Output();
  EXPECT_EQ(HttpGet(port, std::string("/ipxe?mac=") + kCp1Mac).status, 200);
  auto readyz = HttpGet(port, "/readyz");
  EXPECT_THAT(readyz.body, HasSubstr("degraded: the upgrade reconciler is off: "));
  EXPECT_THAT(readyz.body, HasSubstr("state.json"));
  auto status = nlohmann::json::parse(HttpGet(port, "/status").body, nullptr, false);
  ASSERT_TRUE(status.is_object());
  EXPECT_THAT(status["fleet"]["disabled"].get<std::string>(), HasSubstr("state.json"));
  auto shown = testutil::Run({kBinary, "status", "--server", "http://127.0.0.1:" + std::to_string(port)});
  EXPECT_THAT(shown.output, HasSubstr("fleet: the upgrade reconciler is off: "));
  EXPECT_THAT(HttpGet(port, "/metrics").body,
              HasSubstr("ironboot_reconciler_disabled{reconciler=\"upgrade\"} 1"));
  EXPECT_THAT(server.Output(), HasSubstr("the upgrade reconciler is off"));
}

}  // namespace
}  // namespace ironboot::controller
