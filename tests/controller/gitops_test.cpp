// Tests of the GitOps loop (GitOpsController) with real parts: a real bare
// git repository made with the git CLI (file:// and git:// through git
// daemon on 127.0.0.1), a real AssetCache in a temp state dir fetching file://
// assets, a real StoreHolder and a Prometheus registry. Passes are driven with
// ReconcileOnce(); nothing waits for time.

#include "controller/gitops.h"
#include "talos/age.h"
#include "talos/age_secrets.h"
#include "talos/secrets_bundle.h"

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
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bootserver/labels.h"
#include "controller/git_source.h"
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
using testutil::Process;
using testutil::Run;
using testutil::TempDir;
using testutil::WaitFor;
using testutil::WriteFile;

// Random bytes standing in for a Talos kernel or initramfs, written to `path`.
std::string WriteAsset(const fs::path& path, unsigned seed) {
  std::mt19937 rng(seed);
  std::string bytes(4096 + seed % 1000, '\0');
  for (auto& c : bytes) {
    c = static_cast<char>(rng());
  }
  WriteFile(path, bytes);
  return bytes;
}

// A TalosRelease whose assets are file:// URLs with the given digests.
std::string ReleaseYaml(const std::string& version, const fs::path& kernel,
                        const std::string& kernel_sha512, const fs::path& initramfs,
                        const std::string& initramfs_sha512) {
  return "apiVersion: ironboot.dev/v1alpha1\n"
         "kind: TalosRelease\n"
         "metadata:\n"
         "  name: talos-" +
         version +
         "-amd64\n"
         "spec:\n"
         "  version: " +
         version +
         "\n"
         "  arch: amd64\n"
         "  kernel:\n"
         "    url: file://" +
         kernel.string() +
         "\n"
         "    sha512: " +
         kernel_sha512 +
         "\n"
         "  initramfs:\n"
         "    url: file://" +
         initramfs.string() +
         "\n"
         "    sha512: " +
         initramfs_sha512 + "\n";
}

// examples/homelab with its TalosRelease replaced by one with local assets.
std::map<std::string, std::string> HomelabFiles() {
  const fs::path root = fs::path(IRONBOOT_SOURCE_DIR) / "examples" / "homelab";
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) {
      files[fs::relative(entry.path(), root).string()] = testutil::ReadFile(entry.path());
    }
  }
  std::string& cluster = files["cluster.yaml"];
  cluster = cluster.substr(0, cluster.find("\n---\n") + 1);  // the Cluster document only
  return files;
}

std::string MachineYaml(const std::string& name, const std::string& mac, const std::string& address,
                        const std::string& extra = "") {
  return "apiVersion: ironboot.dev/v1alpha1\n"
         "kind: Machine\n"
         "metadata:\n"
         "  name: " +
         name +
         "\n"
         "spec:\n"
         "  role: controlplane\n"
         "  mac: " +
         mac +
         "\n"
         "  address: " +
         address + "\n" + extra;
}

// Reads a sample from the registry: a counter's or gauge's value, or a
// histogram's sample count, summed over the series whose labels include
// `labels`. -1 when no series matches.
double Metric(prometheus::Registry& registry, const std::string& name,
              const std::map<std::string, std::string>& labels = {}) {
  double sum = -1;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) {
      continue;
    }
    for (const auto& m : family.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const auto& l : m.label) {
          found = found || (l.name == k && l.value == v);
        }
        match = match && found;
      }
      if (!match) {
        continue;
      }
      double value = family.type == prometheus::MetricType::Counter ? m.counter.value
                     : family.type == prometheus::MetricType::Gauge
                         ? m.gauge.value
                         : static_cast<double>(m.histogram.sample_count);
      sum = (sum < 0 ? 0 : sum) + value;
    }
  }
  return sum;
}

std::string Joined(const json& array) {
  std::string out;
  for (const auto& s : array) {
    out += s.get<std::string>() + "\n";
  }
  return out;
}

constexpr char kCp1Mac[] = "00:23:24:e7:29:40";
constexpr char kCp2Mac[] = "00:23:24:e7:29:41";

class GitOpsTest : public ::testing::Test {
 protected:
  GitOpsTest() : bare_(tmp_ / "srv" / "cluster.git"), work_(tmp_ / "work") {
    fs::create_directories(bare_);
    Git(bare_, {"init", "-q", "--bare", "-b", "main"});
    fs::create_directories(work_);
    Git(work_, {"init", "-q", "-b", "main"});
    Git(work_, {"remote", "add", "origin", bare_.string()});
    for (const char* version : {"v1.11.3", "v1.12.0"}) {
      unsigned seed = version[3] == '1' && version[4] == '1' ? 1 : 2;
      fs::path dir = tmp_ / "assets" / version;
      auto& a = assets_[version];
      a.kernel = dir / "vmlinuz";
      a.initramfs = dir / "initramfs.xz";
      a.kernel_bytes = WriteAsset(a.kernel, seed * 10);
      a.kernel_sha512 = reconcilers::Sha512Hex(a.kernel_bytes);
      a.initramfs_sha512 = reconcilers::Sha512Hex(WriteAsset(a.initramfs, seed * 10 + 1));
    }
  }

  std::string Release(const std::string& version, const std::string& kernel_sha512 = "") {
    const auto& a = assets_.at(version);
    return ReleaseYaml(version, a.kernel, kernel_sha512.empty() ? a.kernel_sha512 : kernel_sha512,
                       a.initramfs, a.initramfs_sha512);
  }

  // Writes `files` into the work tree (empty content deletes), commits, and
  // pushes to the bare repository. Returns the commit id.
  std::string Commit(const std::map<std::string, std::string>& files, const std::string& message) {
    for (const auto& [path, content] : files) {
      if (content.empty()) {
        fs::remove(work_ / path);
      } else {
        WriteFile(work_ / path, content);
      }
    }
    Git(work_, {"add", "-A"});
    Git(work_, {"commit", "-q", "-m", message});
    Git(work_, {"push", "-q", "-f", "origin", "HEAD:main"});
    return Git(work_, {"rev-parse", "HEAD"});
  }

  // The homelab repository, all machines on v1.11.3 with verified assets.
  std::string CommitHomelab() {
    auto files = HomelabFiles();
    files["releases/v1.11.3.yaml"] = Release("v1.11.3");
    return Commit(files, "homelab");
  }

  struct Controller {
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
    std::shared_ptr<FakeClock> clock = std::make_shared<FakeClock>();
    std::unique_ptr<reconcilers::AssetCache> cache;
    bootserver::StoreHolder holder;
    std::unique_ptr<bootserver::HttpMetrics> http_metrics;
    std::unique_ptr<GitOpsController> gitops;

    double Get(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
      return Metric(*registry, name, labels);
    }
    const std::string* Config(const std::string& mac) {
      auto store = holder.Get();
      return store ? store->FindMachineConfig(mac) : nullptr;
    }
    const bootserver::Profile* ProfileOf(const std::string& mac) {
      auto store = holder.Get();
      if (!store) {
        return nullptr;
      }
      const bootserver::Group* group = store->Select(bootserver::Labels{{"mac", mac}});
      return group ? store->FindProfile(group->profile) : nullptr;
    }
  };

  std::unique_ptr<Controller> MakeController(const std::string& url,
                                             const fs::path& age_identity_file = {}) {
    auto c = std::make_unique<Controller>();
    GitSourceOptions source_options;
    source_options.url = url;
    source_options.ref = "main";
    source_options.state_dir = state_dir_;
    source_options.connect_timeout = 2s;
    source_options.io_timeout = 5s;
    auto source = GitSource::Create(source_options);
    EXPECT_TRUE(source.has_value()) << source.error().message;
    c->cache = std::make_unique<reconcilers::AssetCache>(state_dir_, c->registry, c->clock);
    c->http_metrics = std::make_unique<bootserver::HttpMetrics>(c->registry);
    GitOpsOptions options;
    options.state_dir = state_dir_;
    options.interval = 1h;
    options.age_identity_file = age_identity_file;
    c->gitops =
        std::make_unique<GitOpsController>(options, std::move(*source), c->cache.get(), &c->holder,
                                           c->http_metrics.get(), c->registry, c->clock);
    return c;
  }

  std::string FileUrl() const { return "file://" + bare_.string(); }
  static std::string Rev(const std::string& commit) { return "main@sha1:" + commit; }

  struct ReleaseAssets {
    fs::path kernel;
    fs::path initramfs;
    std::string kernel_bytes;
    std::string kernel_sha512;
    std::string initramfs_sha512;
  };

  TempDir tmp_;
  fs::path bare_;
  fs::path work_;
  fs::path state_dir_ = tmp_ / "state";
  std::map<std::string, ReleaseAssets> assets_;
};

// The first pass fetches, validates, renders, verifies the assets and
// publishes: the store selects each machine's group, /config content has the
// hostname, the kernel is served from the verified cache, the plan is saved,
// and the metrics and /status say so.
TEST_F(GitOpsTest, FirstPassPublishes) {
  std::string commit = CommitHomelab();
  auto c = MakeController(FileUrl());

  auto pass = c->gitops->ReconcileOnce();

  ASSERT_TRUE(pass.has_value()) << pass.error().message;
  EXPECT_EQ(c->gitops->ServedRevision(), Rev(commit));
  auto store = c->holder.Get();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->group_count(), 3u);
  ASSERT_NE(c->Config(kCp1Mac), nullptr);
  EXPECT_THAT(*c->Config(kCp1Mac), HasSubstr("hostname: controlplane1"));
  ASSERT_NE(c->Config(kCp2Mac), nullptr);
  EXPECT_THAT(*c->Config(kCp2Mac), HasSubstr("hostname: controlplane2"));
  const auto* profile = c->ProfileOf(kCp1Mac);
  ASSERT_NE(profile, nullptr);
  EXPECT_THAT(profile->kernel, HasSubstr("/assets/"));
  std::string served_kernel = profile->kernel.substr(profile->kernel.find("/assets/") + 8);
  const fs::path* kernel_file = store->FindExtraAsset(served_kernel);
  ASSERT_NE(kernel_file, nullptr) << served_kernel;
  EXPECT_EQ(testutil::ReadFile(*kernel_file), assets_["v1.11.3"].kernel_bytes);
  EXPECT_TRUE(fs::exists(state_dir_ / "plan" / "last-good.json"));

  json status = c->gitops->Status();
  EXPECT_EQ(status["served"]["revision"], Rev(commit));
  ASSERT_EQ(status["served"]["machines"].size(), 3u);
  EXPECT_EQ(status["served"]["machines"][0]["name"], "controlplane1");
  EXPECT_EQ(status["served"]["machines"][0]["release"], "v1.11.3");
  EXPECT_TRUE(status["rejected"].is_null());
  EXPECT_TRUE(status["held_back"].empty());
  EXPECT_EQ(status["source"]["last_fetch"]["result"], "ok");
  EXPECT_EQ(status["source"]["last_fetch"]["revision"], Rev(commit));

  EXPECT_EQ(c->Get("ironboot_source_fetch_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(c->Get("ironboot_source_fetch_total", {{"result", "error"}}), 0);
  EXPECT_EQ(
      c->Get("ironboot_source_last_success_timestamp_seconds"),
      std::chrono::duration_cast<std::chrono::seconds>(c->clock->Now().time_since_epoch()).count());
  EXPECT_EQ(c->Get("ironboot_source_revision_info", {{"revision", Rev(commit)}}), 1);
  for (const char* reconciler : {"source", "render", "assets", "boot"}) {
    EXPECT_EQ(c->Get("ironboot_reconcile_total", {{"reconciler", reconciler}, {"result", "ok"}}), 1)
        << reconciler;
    EXPECT_GE(c->Get("ironboot_reconcile_duration_seconds", {{"reconciler", reconciler}}), 1)
        << reconciler;
  }
  EXPECT_EQ(c->Get("ironboot_manifest_errors"), 0);
  EXPECT_GT(c->Get("ironboot_asset_download_bytes_total"), 8000);

  // A pass with nothing new fetches but does not publish again.
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  EXPECT_EQ(c->Get("ironboot_source_fetch_total", {{"result", "ok"}}), 2);
  EXPECT_EQ(c->Get("ironboot_reconcile_total", {{"reconciler", "boot"}, {"result", "ok"}}), 1);
  EXPECT_EQ(c->holder.Get(), store);
}

// Issue 15: /status as anyone sees it lists machines by name, address and
// release but no MAC anywhere (with a MAC-keyed boot protocol a MAC is what
// targets a machine).
TEST_F(GitOpsTest, StatusNamesNoMacs) {
  CommitHomelab();
  auto c = MakeController(FileUrl());
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  json status = c->gitops->Status();
  ASSERT_EQ(status["served"]["machines"].size(), 3u);
  EXPECT_EQ(status["served"]["machines"][0]["name"], "controlplane1");
  EXPECT_FALSE(status["served"]["machines"][0]["address"].get<std::string>().empty());
  for (const auto& m : status["served"]["machines"]) {
    EXPECT_FALSE(m.contains("macs")) << m.dump();
  }
  std::string text = status.dump();
  EXPECT_THAT(text, Not(HasSubstr(kCp1Mac)));
  EXPECT_THAT(text, Not(HasSubstr(kCp2Mac)));
}

// The loopback view of /status (someone on the boot server: `ironboot plan
// --server`, the runbook's jq lines) adds each machine's MACs.
TEST_F(GitOpsTest, LocalStatusNamesMacs) {
  CommitHomelab();
  auto c = MakeController(FileUrl());
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  json status = c->gitops->Status(GitOpsController::StatusView::kLocal);
  ASSERT_EQ(status["served"]["machines"].size(), 3u);
  EXPECT_EQ(status["served"]["machines"][0]["macs"], json::array({kCp1Mac}));
}

// A commit with a YAML syntax error, then one with a duplicate MAC (another
// notation), are rejected: the previous revision keeps serving, /status lists
// file:line:col diagnostics and ironboot_manifest_errors counts them; a fix
// publishes again and clears "rejected".
TEST_F(GitOpsTest, BadCommitsRejectedLastGoodKeepsServing) {
  std::string good = CommitHomelab();
  auto c = MakeController(FileUrl());
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  auto good_store = c->holder.Get();

  std::string broken = Commit({{"machines/controlplane2.yaml",
                                "apiVersion: ironboot.dev/v1alpha1\nkind: Machine\n"
                                "metadata:\n  name: controlplane2\nspec:\n"
                                "  role: [controlplane\n  mac: 00:23:24:e7:29:41\n"}},
                              "syntax error");
  auto pass = c->gitops->ReconcileOnce();
  ASSERT_TRUE(pass.has_value()) << "a rejected revision is not a failed pass";
  EXPECT_EQ(c->gitops->ServedRevision(), Rev(good));
  EXPECT_EQ(c->holder.Get(), good_store);
  ASSERT_NE(c->Config(kCp2Mac), nullptr);
  EXPECT_THAT(*c->Config(kCp2Mac), HasSubstr("hostname: controlplane2"));
  json status = c->gitops->Status();
  ASSERT_FALSE(status["rejected"].is_null());
  EXPECT_EQ(status["rejected"]["revision"], Rev(broken));
  EXPECT_THAT(Joined(status["rejected"]["errors"]),
              ContainsRegex("machines/controlplane2\\.yaml:[0-9]+:[0-9]+: "));
  EXPECT_EQ(status["served"]["revision"], Rev(good));
  EXPECT_GT(c->Get("ironboot_manifest_errors"), 0);
  EXPECT_EQ(c->Get("ironboot_reconcile_total", {{"reconciler", "render"}, {"result", "error"}}), 1);

  // Valid YAML, but controlplane3 claims controlplane1's MAC in dash notation.
  std::string duplicate = Commit(
      {{"machines/controlplane2.yaml", MachineYaml("controlplane2", kCp2Mac, "10.0.4.102/24")},
       {"machines/controlplane3.yaml",
        MachineYaml("controlplane3", "00-23-24-E7-29-40", "10.0.4.103/24")}},
      "duplicate mac");
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  EXPECT_EQ(c->gitops->ServedRevision(), Rev(good));
  status = c->gitops->Status();
  EXPECT_EQ(status["rejected"]["revision"], Rev(duplicate));
  std::string errors = Joined(status["rejected"]["errors"]);
  EXPECT_THAT(errors, ContainsRegex("machines/controlplane3\\.yaml:[0-9]+:[0-9]+: spec\\.mac: "));
  EXPECT_THAT(errors, HasSubstr("controlplane1"));
  EXPECT_EQ(c->Get("ironboot_manifest_errors"), 1);

  // The fix publishes and clears the rejection.
  std::string fixed = Commit({{"machines/controlplane3.yaml",
                               MachineYaml("controlplane3", "00:23:24:e7:29:42", "10.0.4.103/24")}},
                             "fix");
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  EXPECT_EQ(c->gitops->ServedRevision(), Rev(fixed));
  ASSERT_NE(c->Config("00:23:24:e7:29:42"), nullptr);
  EXPECT_THAT(*c->Config("00:23:24:e7:29:42"), HasSubstr("hostname: controlplane3"));
  status = c->gitops->Status();
  EXPECT_TRUE(status["rejected"].is_null());
  EXPECT_EQ(c->Get("ironboot_manifest_errors"), 0);
  EXPECT_EQ(c->Get("ironboot_source_revision_info", {{"revision", Rev(fixed)}}), 1);
  EXPECT_EQ(c->Get("ironboot_source_revision_info", {{"revision", Rev(good)}}), -1)
      << "the old revision's series is removed";
}

// A force-push back to an older commit is followed: the older revision's
// plan is published again.
TEST_F(GitOpsTest, ForcePushToOlderCommitFollowed) {
  std::string first = CommitHomelab();
  auto c = MakeController(FileUrl());
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  std::string second = Commit(
      {{"machines/controlplane1.yaml", MachineYaml("controlplane1", kCp1Mac, "10.0.4.101/24",
                                                   "  kernelArgs: [ironboot.test=second]\n")}},
      "second");
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  ASSERT_EQ(c->gitops->ServedRevision(), Rev(second));
  ASSERT_NE(c->ProfileOf(kCp1Mac), nullptr);
  EXPECT_THAT(c->ProfileOf(kCp1Mac)->args, testing::Contains("ironboot.test=second"));

  Git(work_, {"reset", "-q", "--hard", first});
  Git(work_, {"push", "-q", "-f", "origin", "HEAD:main"});
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());

  EXPECT_EQ(c->gitops->ServedRevision(), Rev(first));
  ASSERT_NE(c->ProfileOf(kCp1Mac), nullptr);
  EXPECT_THAT(c->ProfileOf(kCp1Mac)->args, Not(testing::Contains("ironboot.test=second")));
}

// The remote going away (git daemon killed) makes a pass fail with
// kUnavailable naming the URL while the plan keeps serving; when it comes
// back the commits pushed meanwhile are published.
TEST_F(GitOpsTest, RemoteDownKeepsServingThenRecovers) {
  CommitHomelab();
  GitDaemon daemon(tmp_ / "srv", testutil::FreePort());
  auto c = MakeController(daemon.Url("cluster.git"));
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  std::string served = c->gitops->ServedRevision();
  auto store = c->holder.Get();

  daemon.Kill();
  std::string later = Commit(
      {{"machines/controlplane1.yaml", MachineYaml("controlplane1", kCp1Mac, "10.0.4.101/24",
                                                   "  kernelArgs: [ironboot.test=later]\n")}},
      "pushed while the daemon is down");
  auto down = c->gitops->ReconcileOnce();

  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable) << down.error().message;
  EXPECT_THAT(down.error().message, HasSubstr(daemon.Url("cluster.git")));
  EXPECT_EQ(c->gitops->ServedRevision(), served);
  EXPECT_EQ(c->holder.Get(), store);
  json status = c->gitops->Status();
  EXPECT_EQ(status["source"]["last_fetch"]["result"], "error");
  EXPECT_THAT(status["source"]["last_fetch"]["error"].get<std::string>(),
              HasSubstr(daemon.Url("cluster.git")));
  EXPECT_EQ(status["served"]["revision"], served);
  EXPECT_EQ(c->Get("ironboot_source_fetch_total", {{"result", "error"}}), 1);
  EXPECT_EQ(c->Get("ironboot_reconcile_total", {{"reconciler", "source"}, {"result", "error"}}), 1);
  double last_success = c->Get("ironboot_source_last_success_timestamp_seconds");

  daemon.Start();
  c->clock->Advance(30s);
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  EXPECT_EQ(c->gitops->ServedRevision(), Rev(later));
  EXPECT_THAT(c->ProfileOf(kCp1Mac)->args, testing::Contains("ironboot.test=later"));
  EXPECT_EQ(c->Get("ironboot_source_last_success_timestamp_seconds"), last_success + 30);
  EXPECT_EQ(c->gitops->Status()["source"]["last_fetch"]["result"], "ok");
}

// A file:// remote that was removed fails the pass with a message naming it;
// the plan keeps serving.
TEST_F(GitOpsTest, RemovedFileRemoteKeepsServing) {
  CommitHomelab();
  auto c = MakeController(FileUrl());
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  std::string served = c->gitops->ServedRevision();

  fs::rename(bare_, tmp_ / "moved.git");
  auto down = c->gitops->ReconcileOnce();

  ASSERT_FALSE(down.has_value());
  EXPECT_THAT(down.error().message, HasSubstr(bare_.string()));
  EXPECT_EQ(c->gitops->ServedRevision(), served);
  ASSERT_NE(c->Config(kCp1Mac), nullptr);

  fs::rename(tmp_ / "moved.git", bare_);
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  EXPECT_EQ(c->gitops->ServedRevision(), served);
}

// A release whose kernel fails SHA-512 verification holds back the machines
// on it: controlplane1 (upgraded to it) keeps its previous plan and is named
// in /status "held_back"; controlplane2 moves on to the new revision; the
// failure is counted; a corrected digest then lets controlplane1 move on too.
TEST_F(GitOpsTest, WrongSha512HoldsBackMachinesOfThatRelease) {
  CommitHomelab();
  auto c = MakeController(FileUrl());
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  const std::string old_kernel = c->ProfileOf(kCp1Mac)->kernel;
  const std::string old_cp1_config = *c->Config(kCp1Mac);

  std::string wrong = reconcilers::Sha512Hex("not the kernel");
  std::string bad = Commit(
      {{"releases/v1.12.0.yaml", Release("v1.12.0", wrong)},
       {"machines/controlplane1.yaml",
        MachineYaml("controlplane1", kCp1Mac, "10.0.4.101/24", "  talosVersion: v1.12.0\n")},
       {"machines/controlplane2.yaml", MachineYaml("controlplane2", kCp2Mac, "10.0.4.102/24",
                                                   "  kernelArgs: [ironboot.test=moved]\n")}},
      "upgrade controlplane1 to a release with a wrong digest");
  auto pass = c->gitops->ReconcileOnce();

  ASSERT_TRUE(pass.has_value()) << pass.error().message;
  EXPECT_EQ(c->gitops->ServedRevision(), Rev(bad));
  ASSERT_NE(c->ProfileOf(kCp1Mac), nullptr);
  EXPECT_EQ(c->ProfileOf(kCp1Mac)->kernel, old_kernel);
  EXPECT_EQ(*c->Config(kCp1Mac), old_cp1_config);
  EXPECT_THAT(c->ProfileOf(kCp2Mac)->args, testing::Contains("ironboot.test=moved"));
  json status = c->gitops->Status();
  ASSERT_EQ(status["held_back"].size(), 1u) << status.dump(2);
  EXPECT_EQ(status["held_back"][0]["machine"], "controlplane1");
  EXPECT_EQ(status["held_back"][0]["release"], "v1.12.0/amd64");
  EXPECT_EQ(status["held_back"][0]["serving"], "previous plan");
  EXPECT_THAT(status["held_back"][0]["reason"].get<std::string>(), HasSubstr("kernel"));
  EXPECT_EQ(status["served"]["machines"][0]["name"], "controlplane1");
  EXPECT_EQ(status["served"]["machines"][0]["release"], "v1.11.3");
  EXPECT_EQ(c->Get("ironboot_asset_verify_failures_total"), 1);
  EXPECT_EQ(c->Get("ironboot_reconcile_total", {{"reconciler", "assets"}, {"result", "error"}}), 1);
  EXPECT_EQ(c->holder.Get()->FindExtraAsset("talos/1.12.0/amd64/vmlinuz"), nullptr);

  // The plan saved on disk is what is served (controlplane1 still on v1.11.3).
  auto restarted = MakeController(FileUrl());
  ASSERT_TRUE(restarted->gitops->RestoreLastGood());
  EXPECT_EQ(restarted->ProfileOf(kCp1Mac)->kernel, old_kernel);

  std::string fixed = Commit({{"releases/v1.12.0.yaml", Release("v1.12.0")}}, "right digest");
  ASSERT_TRUE(c->gitops->ReconcileOnce().has_value());
  EXPECT_EQ(c->gitops->ServedRevision(), Rev(fixed));
  EXPECT_NE(c->ProfileOf(kCp1Mac)->kernel, old_kernel);
  EXPECT_THAT(c->ProfileOf(kCp1Mac)->kernel, HasSubstr("/talos/1.12.0/"));
  EXPECT_TRUE(c->gitops->Status()["held_back"].empty());
  EXPECT_EQ(c->Get("ironboot_asset_verify_failures_total"), 1);
}

// A restart with the remote down serves the last good plan from disk
// (RestoreLastGood) before any fetch succeeds; the failed fetch does not
// unpublish it. A corrupt plan file is not restored.
TEST_F(GitOpsTest, RestartServesLastGoodPlanWithRemoteDown) {
  std::string commit = CommitHomelab();
  auto daemon = std::make_unique<GitDaemon>(tmp_ / "srv", testutil::FreePort());
  std::string url = daemon->Url("cluster.git");
  {
    auto first = MakeController(url);
    ASSERT_TRUE(first->gitops->ReconcileOnce().has_value());
  }
  daemon.reset();

  auto c = MakeController(url);
  EXPECT_EQ(c->holder.Get(), nullptr);
  ASSERT_TRUE(c->gitops->RestoreLastGood());
  EXPECT_EQ(c->gitops->ServedRevision(), Rev(commit));
  ASSERT_NE(c->Config(kCp1Mac), nullptr);
  EXPECT_THAT(*c->Config(kCp1Mac), HasSubstr("hostname: controlplane1"));
  const auto* profile = c->ProfileOf(kCp1Mac);
  ASSERT_NE(profile, nullptr);
  std::string served_kernel = profile->kernel.substr(profile->kernel.find("/assets/") + 8);
  ASSERT_NE(c->holder.Get()->FindExtraAsset(served_kernel), nullptr);
  EXPECT_EQ(c->Get("ironboot_source_revision_info", {{"revision", Rev(commit)}}), 1);

  auto pass = c->gitops->ReconcileOnce();
  ASSERT_FALSE(pass.has_value());
  EXPECT_EQ(pass.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(c->gitops->ServedRevision(), Rev(commit));
  EXPECT_NE(c->Config(kCp1Mac), nullptr);

  WriteFile(state_dir_ / "plan" / "last-good.json", "{\"format\": 1, \"revis");
  auto corrupt = MakeController(url);
  EXPECT_FALSE(corrupt->gitops->RestoreLastGood());
  EXPECT_EQ(corrupt->holder.Get(), nullptr);
  EXPECT_EQ(corrupt->gitops->ServedRevision(), "");
}

// Start() runs a first pass at once and Trigger() runs another without
// waiting for the (hour-long) interval; Stop() returns promptly.
TEST_F(GitOpsTest, StartAndTriggerRunPasses) {
  CommitHomelab();
  auto c = MakeController(FileUrl());
  c->gitops->Start();
  ASSERT_TRUE(WaitFor([&] { return !c->gitops->ServedRevision().empty(); }));

  std::string next =
      Commit({{"machines/controlplane1.yaml", MachineYaml("controlplane1", kCp1Mac, "10.0.4.101/24",
                                                          "  kernelArgs: [ironboot.test=hook]\n")}},
             "next");
  c->gitops->Trigger("test");
  EXPECT_TRUE(WaitFor([&] { return c->gitops->ServedRevision() == Rev(next); }));
  c->gitops->Stop();
}

}  // namespace
}  // namespace ironboot::controller

namespace ironboot::controller {
namespace {

// With -age-identity, the secrets bundle is the repo's own secrets.yaml.age,
// decrypted in memory: the machine configs carry that bundle's secrets. A
// revision whose secrets.yaml.age is for another identity (or missing) is
// rejected with the file named, and the previous plan keeps serving.
TEST_F(GitOpsTest, EncryptedSecretsInRepoDecryptedWithIdentity) {
  auto talosctl = testutil::ReadFile(std::string(IRONBOOT_SHARED_DIR) +
                                     "/talos/testdata/generate/secrets/testdata/secrets.yaml");
  auto bundle = talos::LoadSecretsBundle(talosctl, "secrets.yaml");
  ASSERT_TRUE(bundle) << bundle.error().message;
  auto identity = talos::AgeGenerateIdentity();
  ASSERT_TRUE(identity) << identity.error().message;
  WriteFile(tmp_ / "identity.txt", identity->secret_key + "\n");
  auto encrypted = talos::EncryptSecretsBundle(*bundle, {identity->recipient});
  ASSERT_TRUE(encrypted) << encrypted.error().message;

  auto files = HomelabFiles();
  files["releases/v1.11.3.yaml"] = Release("v1.11.3");
  files["secrets.yaml.age"] = *encrypted;
  Commit(files, "homelab with encrypted secrets");
  auto c = MakeController(FileUrl(), tmp_ / "identity.txt");
  ASSERT_TRUE(c->gitops->ReconcileOnce());
  const std::string* config = c->Config("00:23:24:e7:29:40");
  ASSERT_NE(config, nullptr) << c->gitops->Status().dump(2);
  EXPECT_THAT(*config, HasSubstr(bundle->cluster_secret)) << "config generated from the bundle";
  EXPECT_THAT(*config, HasSubstr(bundle->bootstrap_token));
  std::string served = c->gitops->ServedRevision();

  auto other = talos::AgeGenerateIdentity();
  ASSERT_TRUE(other);
  auto wrong = talos::EncryptSecretsBundle(*bundle, {other->recipient});
  ASSERT_TRUE(wrong);
  Commit({{"secrets.yaml.age", *wrong}}, "secrets for another identity");
  ASSERT_TRUE(c->gitops->ReconcileOnce());
  json status = c->gitops->Status();
  EXPECT_EQ(c->gitops->ServedRevision(), served) << "the last good plan keeps serving";
  ASSERT_TRUE(status["rejected"].is_object()) << status.dump(2);
  EXPECT_THAT(Joined(status["rejected"]["errors"]), HasSubstr("secrets.yaml.age"));
  EXPECT_THAT(status.dump(), Not(HasSubstr(bundle->cluster_secret)));

  Commit({{"secrets.yaml.age", ""}}, "secrets removed");
  ASSERT_TRUE(c->gitops->ReconcileOnce());
  EXPECT_THAT(Joined(c->gitops->Status()["rejected"]["errors"]),
              HasSubstr("secrets.yaml.age: missing from the repository"));
}

}  // namespace
}  // namespace ironboot::controller
