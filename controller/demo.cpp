#include "controller/demo.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/clock.h"
#include "fleet/sim_kernel.h"
#include "reconcilers/sha512.h"
#include "talos/secrets_bundle.h"

extern char** environ;

namespace ironboot::controller {
namespace fs = std::filesystem;

namespace {

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

Result<void> Write(const fs::path& file, const std::string& text) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) {
    return Fail(ErrorCode::kInternal, "cannot write " + file.string());
  }
  return {};
}

// Homelab's addresses and boot server moved to loopback; the Cluster file
// keeps only the Cluster document (releases are the demo's own) and no
// baseConfigs (configs come from the generated secrets bundle).
std::string RewriteForLoopback(std::string text, const DemoOptions& options) {
  text = ReplaceAll(std::move(text), "10.0.4.", options.machine_net + ".");
  text = ReplaceAll(std::move(text), "http://10.0.112.2:8080", "http://" + options.address);
  return text;
}

std::string DemoCluster(const std::string& homelab, const DemoOptions& options) {
  std::string text = homelab.substr(0, homelab.find("\n---\n") + 1);
  std::string out;
  std::istringstream lines(text);
  std::string line;
  bool in_base_configs = false;
  while (std::getline(lines, line)) {
    if (line.rfind("  baseConfigs:", 0) == 0) {
      in_base_configs = true;
      continue;
    }
    if (in_base_configs && line.rfind("    ", 0) == 0) {
      continue;
    }
    in_base_configs = false;
    if (line.rfind("    healthTimeout:", 0) == 0) {
      line = "    healthTimeout: " + options.health_timeout;
    }
    out += line + "\n";
  }
  return RewriteForLoopback(out, options);
}

std::string Worker(const std::string& name, const std::string& mac, const std::string& address) {
  return "apiVersion: ironboot.dev/v1alpha1\nkind: Machine\nmetadata:\n  name: " + name +
         "\nspec:\n  role: worker\n  mac: " + mac + "\n  address: " + address + "\n";
}

Result<std::string> Release(const fs::path& dir, const std::string& version) {
  auto paths = fleet::WriteSimAssets(dir / "releases" / version, version);
  if (!paths) {
    return std::unexpected(paths.error());
  }
  std::string sums;
  for (const auto& file : {paths->kernel, paths->initramfs}) {
    auto sum = reconcilers::Sha512OfFile(file);
    if (!sum) {
      return std::unexpected(sum.error());
    }
    sums += *sum + "  " + file.filename().string() + "\n";
  }
  fs::path sums_file = dir / "releases" / version / "sha512sum.txt";
  if (auto w = Write(sums_file, sums); !w) {
    return std::unexpected(w.error());
  }
  return "---\napiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata:\n  name: talos-" +
         version + "-amd64\nspec:\n  version: " + version +
         "\n  arch: amd64\n  # Stand-in assets (the demo needs no network); real releases use the\n"
         "  # Image Factory or GitHub URLs and go through the same download and sha512 check.\n"
         "  kernel:\n    url: file://" + paths->kernel.string() + "\n  initramfs:\n    url: file://" +
         paths->initramfs.string() + "\n  sha512sumURL: file://" + sums_file.string() +
         "\n  installerImage: factory.talos.dev/metal-installer/"
         "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:" + version + "\n";
}

Result<void> Git(const fs::path& repo, std::vector<std::string> args, const fs::path& log) {
  std::vector<std::string> argv = {"git", "-C", repo.string(), "-c", "user.name=ironboot demo",
                                   "-c", "user.email=demo@ironboot.invalid", "-c", "commit.gpgsign=false"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto status = RunAndWait(argv, log);
  if (!status) {
    return std::unexpected(status.error());
  }
  if (*status != 0) {
    std::string cmd;
    for (const auto& a : args) {
      cmd += " " + a;
    }
    return Fail(ErrorCode::kInternal,
                "git" + cmd + " in " + repo.string() + " exited " + std::to_string(*status) +
                    " (see " + log.string() + ")");
  }
  return {};
}

}  // namespace

Result<int> RunAndWait(const std::vector<std::string>& argv, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  std::string out = log.empty() ? "/dev/null" : log.string();
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> cargv;
  for (const auto& a : argv) {
    cargv.push_back(const_cast<char*>(a.c_str()));
  }
  cargv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, cargv[0], &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return Fail(ErrorCode::kNotFound, "cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Result<DemoPlan> PrepareDemo(const DemoOptions& options) {
  DemoPlan plan;
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) {
    return Fail(ErrorCode::kInvalid, "demo: cannot create " + options.dir.string() + ": " + ec.message());
  }
  fs::path dir = fs::absolute(options.dir);
  plan.repo = dir / "repo";
  if (fs::exists(plan.repo)) {
    return Fail(ErrorCode::kInvalid, "demo: " + plan.repo.string() +
                                         " already exists; give an empty --dir (or none for a new one)");
  }
  fs::path log = dir / "git.log";

  // The secrets bundle, outside the repo.
  SystemClock clock;
  auto secrets = talos::GenerateSecrets(clock);
  if (!secrets) {
    return std::unexpected(secrets.error().Wrap("demo: secrets"));
  }
  plan.secrets = dir / "secrets.yaml";
  if (auto w = WriteFileAtomically(plan.secrets, talos::SaveSecretsBundle(*secrets)); !w) {
    return std::unexpected(w.error());
  }

  // The repo.
  std::string releases;
  std::vector<std::string> versions = {options.from_version};
  for (const auto& v : options.extra_versions) {
    if (std::find(versions.begin(), versions.end(), v) == versions.end()) {
      versions.push_back(v);
    }
  }
  for (const auto& v : versions) {
    auto doc = Release(dir, v);
    if (!doc) {
      return std::unexpected(doc.error().Wrap("demo: release " + v));
    }
    releases += *doc;
  }
  for (const auto& file : EmbeddedHomelab()) {
    std::string path = file.path;
    if (path == "controlplane.yaml" || path == "worker.yaml") {
      continue;  // talosctl output; the demo generates configs from its bundle
    }
    std::string text = path == "cluster.yaml" ? DemoCluster(file.text, options)
                                              : RewriteForLoopback(file.text, options);
    if (path == "cluster.yaml") {
      text = ReplaceAll(text, "talosVersion: v1.11.3", "talosVersion: " + options.from_version);
      text += releases;
    }
    if (auto w = Write(plan.repo / path, text); !w) {
      return std::unexpected(w.error());
    }
    plan.machines += path.rfind("machines/", 0) == 0 ? 1 : 0;
  }
  plan.cluster_file = "cluster.yaml";
  for (auto [name, mac, address] :
       {std::tuple{"worker1", "00:23:24:e7:29:51", options.machine_net + ".111/24"},
        std::tuple{"worker2", "00:23:24:e7:29:52", options.machine_net + ".112/24"}}) {
    if (auto w = Write(plan.repo / "machines" / (std::string(name) + ".yaml"), Worker(name, mac, address)); !w) {
      return std::unexpected(w.error());
    }
    ++plan.machines;
  }
  if (auto r = Git(plan.repo, {"init", "-q", "-b", "main"}, log); !r) {
    return std::unexpected(r.error());
  }
  if (auto r = Git(plan.repo, {"add", "-A"}, log); !r) {
    return std::unexpected(r.error());
  }
  if (auto r = Git(plan.repo, {"commit", "-q", "-m", "homelab on loopback, talos " + options.from_version}, log);
      !r) {
    return std::unexpected(r.error());
  }

  std::string boot_server = "http://" + options.address;
  plan.serve_args = {"serve",
                     "-address", options.address,
                     "-repo", plan.repo.string(),
                     "-ref", "main",
                     "-state-dir", (dir / "state").string(),
                     "-secrets-file", plan.secrets.string(),
                     "-interval", "2s",
                     "-upgrade-interval", "500ms",
                     "-talos-poll-interval", "2s",
                     "-talos-api-timeout", "2s",
                     "-reboot-grace", "5s",
                     // The fleet's nodes fetch their configs from their own
                     // loopback addresses, as real machines would.
                     "-config-rate", "0"};
  plan.fleet_args = {"fleet",
                     "--boot-server", boot_server,
                     "--secrets", plan.secrets.string(),
                     "--repo", plan.repo.string(),
                     "--reboot-delay", options.reboot_delay};
  if (!options.fleet_status_address.empty()) {
    plan.fleet_args.push_back("--status-address");
    plan.fleet_args.push_back(options.fleet_status_address);
  }
  for (const auto& f : options.faults) {
    plan.fleet_args.push_back("--fault");
    plan.fleet_args.push_back(f);
  }
  return plan;
}

Result<void> CommitTalosVersion(const DemoPlan& plan, const std::string& version) {
  fs::path file = plan.repo / plan.cluster_file;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Fail(ErrorCode::kNotFound, "demo: cannot read " + file.string());
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto pos = text.find("  talosVersion: ");
  if (pos == std::string::npos) {
    return Fail(ErrorCode::kInvalid, file.string() + ": no spec.talosVersion line to change");
  }
  auto end = text.find('\n', pos);
  text.replace(pos, end - pos, "  talosVersion: " + version);
  if (auto w = Write(file, text); !w) {
    return std::unexpected(w.error());
  }
  fs::path log = plan.repo.parent_path() / "git.log";
  if (auto r = Git(plan.repo, {"commit", "-q", "-am", "talos " + version}, log); !r) {
    return std::unexpected(r.error());
  }
  return {};
}

}  // namespace ironboot::controller
