// `ironboot demo`: the whole loop on one machine, nothing from the network
// (controller/demo.h). With --upgrade-to it commits the Talos bump itself,
// prints a line per rollout step and a progress counter, and with
// --exit-when-done exits 0 once the fleet converged (1 if the rollout
// halted or timed out).

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <thread>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/json_text.h"
#include "common/log.h"
#include "controller/commands.h"
#include "controller/demo.h"
#include "controller/flags.h"

extern char** environ;

namespace ironboot::controller {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kSynopsis[] =
    "ironboot demo [--upgrade-to VERSION [--exit-when-done]] [--dir DIR] [--address HOST:PORT]\n\n"
    "Runs the whole loop on this machine with nothing from the network: a git repo made from\n"
    "examples/homelab on loopback addresses (3 control planes, 2 workers), a generated secrets\n"
    "bundle, stand-in kernels, `ironboot serve` on the repo, and a simulated fleet that boots\n"
    "through it over real HTTP and answers the Talos API over gRPC with mutual TLS. It waits\n"
    "for the fleet to boot and etcd to be bootstrapped, then prints the URLs and the one git\n"
    "command that starts an upgrade. --upgrade-to commits that bump itself and shows the\n"
    "rollout step by step.";

// A child process (ironboot serve / fleet) with its output in a log file.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { Stop(); }

  Result<void> Start(const std::vector<std::string>& args, const fs::path& log) {
    std::vector<std::string> argv = {"/proc/self/exe"};
    argv.insert(argv.end(), args.begin(), args.end());
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    std::vector<char*> cargv;
    for (const auto& a : argv) {
      cargv.push_back(const_cast<char*>(a.c_str()));
    }
    cargv.push_back(nullptr);
    int rc = posix_spawn(&pid_, cargv[0], &actions, &attr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      pid_ = -1;
      return Fail(ErrorCode::kInternal, "cannot start ironboot " + args[0] + ": " + std::strerror(rc));
    }
    return {};
  }

  // True while it runs.
  bool Running() {
    if (pid_ <= 0) {
      return false;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  void Stop() {
    if (pid_ <= 0) {
      return;
    }
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Result<json> GetJson(const std::string& url) {
  CURL* curl = curl_easy_init();
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 3000L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return Fail(ErrorCode::kUnavailable, url + ": " + curl_easy_strerror(rc));
  }
  if (code != 200) {
    return Fail(ErrorCode::kUnavailable, url + ": HTTP " + std::to_string(code));
  }
  auto doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    return Fail(ErrorCode::kInvalid, url + ": not JSON");
  }
  return doc;
}

std::string Str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// The fleet part of /status, or null.
json Fleet(const json& status) {
  return status.contains("fleet") ? status["fleet"] : json();
}

bool AllRunning(const json& fleet, const std::string& version, size_t machines) {
  if (fleet.is_null() || !fleet.contains("machines") || fleet["machines"].size() != machines) {
    return false;
  }
  for (const auto& m : fleet["machines"]) {
    if (Str(m, "observed") != version || !m.value("ready", false)) {
      return false;
    }
  }
  return true;
}

std::string StepLine(const json& step) {
  std::string gate = Str(step, "phase") == "gates" ? "gate " + Str(step, "gate") : Str(step, "phase");
  std::string line = Str(step, "machine") + " " + Str(step, "from") + " -> " + Str(step, "to") + ": " + gate;
  if (step.value("rollback", false)) {
    line += " (rollback)";
  }
  return line;
}

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) {
  g_stop = 1;
}

bool SleepUnlessStopped(std::chrono::milliseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
    if (g_stop) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return !g_stop;
}

}  // namespace

int DemoCommand(Args args) {
  FlagSet flags("demo");
  flags.String("dir", "", "work directory (created; default a new /tmp/ironboot-demo-XXXXXX)");
  flags.String("address", "127.0.0.1:8080", "boot server and controller address");
  flags.String("fleet-status-address", "", "serve the fleet's own record (GET /fleet) on HOST:PORT");
  flags.String("upgrade-to", "", "commit spec.talosVersion: VERSION once the fleet is up, and follow the rollout");
  flags.Bool("prepare-only", "write the repo, secrets, releases and DIR/commands.json (the serve and "
             "fleet command lines) and exit; for tests and benchmarks");
  flags.Bool("exit-when-done", "exit once the fleet converged (0), halted or timed out (1)");
  flags.String("timeout", "10m", "with --exit-when-done: give up after this long");
  flags.String("fault", "", "a fleet fault, e.g. worker1=never-returns (see ironboot fleet --help)", {}, true);
  flags.String("health-timeout", "2m", "the demo cluster's spec.upgrade.healthTimeout");
  flags.String("machine-net", "127.0.4", "the machines' loopback /24 (127.N.N): control planes .101-.103, workers .111-.112");
  flags.Bool("help", "show this help");
  flags.Bool("h", "show this help");
  if (auto parsed = flags.Parse(args); !parsed) {
    std::fprintf(stderr, "ironboot demo: %s\n", parsed.error().message.c_str());
    return 2;
  }
  if (flags.GetBool("help") || flags.GetBool("h")) {
    std::printf("%s", flags.Usage(kSynopsis).c_str());
    return 0;
  }
  auto timeout = ParseFlagDuration("demo", "timeout", flags.Get("timeout"));
  if (!timeout) {
    std::fprintf(stderr, "ironboot demo: %s\n", timeout.error().message.c_str());
    return 2;
  }
  std::string upgrade_to = flags.Get("upgrade-to");
  if (!upgrade_to.empty() && (upgrade_to.size() < 2 || upgrade_to[0] != 'v')) {
    std::fprintf(stderr, "ironboot demo: --upgrade-to %s: want a Talos version like v1.12.0\n",
                 upgrade_to.c_str());
    return 2;
  }
  DemoOptions options;
  if (flags.Get("dir").empty()) {
    char tmpl[] = "/tmp/ironboot-demo-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::perror("ironboot demo: mkdtemp");
      return 1;
    }
    options.dir = tmpl;
  } else {
    options.dir = flags.Get("dir");
  }
  options.address = flags.Get("address");
  options.fleet_status_address = flags.Get("fleet-status-address");
  options.health_timeout = flags.Get("health-timeout");
  options.machine_net = flags.Get("machine-net");
  {
    unsigned a = 0, b = 0, c = 0;
    char tail = 0;
    if (std::sscanf(options.machine_net.c_str(), "%u.%u.%u%c", &a, &b, &c, &tail) != 3 || a != 127 ||
        b > 255 || c > 255) {
      std::fprintf(stderr, "ironboot demo: --machine-net %s: want the first three octets of a loopback /24, e.g. 127.0.4\n",
                   options.machine_net.c_str());
      return 2;
    }
  }
  options.faults = flags.GetAll("fault");
  options.extra_versions = {"v1.12.0"};
  if (!upgrade_to.empty()) {
    options.extra_versions.push_back(upgrade_to);
  }
  auto plan = PrepareDemo(options);
  if (!plan) {
    std::fprintf(stderr, "ironboot demo: %s\n", plan.error().message.c_str());
    return 1;
  }
  fs::path dir = fs::absolute(options.dir);
  if (flags.GetBool("prepare-only")) {
    json commands = {{"repo", plan->repo.string()},
                     {"cluster_file", plan->cluster_file},
                     {"secrets", plan->secrets.string()},
                     {"machines", plan->machines},
                     {"serve", plan->serve_args},
                     {"fleet", plan->fleet_args}};
    if (auto w = WriteFileAtomically(dir / "commands.json", JsonText(commands, 2) + "\n", {.mode = 0644}); !w) {
      std::fprintf(stderr, "ironboot demo: %s\n", w.error().message.c_str());
      return 1;
    }
    std::printf("%s\n", (dir / "commands.json").c_str());
    return 0;
  }
  std::printf("demo dir      %s\nrepo          %s (%zu machines, talos %s)\n", dir.c_str(),
              plan->repo.c_str(), plan->machines, options.from_version.c_str());

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  Child serve;
  Child fleet;
  if (auto s = serve.Start(plan->serve_args, dir / "serve.log"); !s) {
    std::fprintf(stderr, "ironboot demo: %s\n", s.error().message.c_str());
    return 1;
  }
  std::string base = "http://" + options.address;
  // The fleet boots once the server answers.
  auto started = std::chrono::steady_clock::now();
  auto deadline = started + *timeout;
  while (!GetJson(base + "/status")) {
    if (!serve.Running()) {
      std::fprintf(stderr, "ironboot demo: ironboot serve exited; see %s\n", (dir / "serve.log").c_str());
      return 1;
    }
    if (!SleepUnlessStopped(std::chrono::milliseconds(100)) || std::chrono::steady_clock::now() > deadline) {
      return 1;
    }
  }
  if (auto s = fleet.Start(plan->fleet_args, dir / "fleet.log"); !s) {
    std::fprintf(stderr, "ironboot demo: %s\n", s.error().message.c_str());
    return 1;
  }
  std::printf("status        %s/status   (or: ironboot status --server %s)\nmetrics       %s/metrics\n"
              "logs          %s/serve.log, %s/fleet.log\n",
              base.c_str(), base.c_str(), base.c_str(), dir.c_str(), dir.c_str());
  std::fflush(stdout);

  // Phase 1: the fleet boots, etcd is bootstrapped.
  std::printf("booting the fleet (3 control planes, 2 workers) through the boot server...\n");
  std::fflush(stdout);
  json status;
  bool up = false;
  while (!up) {
    if (!SleepUnlessStopped(std::chrono::milliseconds(250))) {
      return 130;
    }
    if (!serve.Running() || !fleet.Running()) {
      std::fprintf(stderr, "ironboot demo: %s exited; see its log in %s\n",
                   serve.Running() ? "ironboot fleet" : "ironboot serve", dir.c_str());
      return 1;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "ironboot demo: the fleet did not come up within %s; see %s/serve.log\n",
                   flags.Get("timeout").c_str(), dir.c_str());
      return 1;
    }
    auto got = GetJson(base + "/status");
    if (!got) {
      continue;
    }
    status = *got;
    json f = Fleet(status);
    up = AllRunning(f, options.from_version, plan->machines) && !f.is_null() &&
         !Str(f["bootstrap"], "done").empty();
  }
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("fleet up in %.1fs: %zu/%zu machines running %s, etcd bootstrapped on %s\n", secs,
              plan->machines, plan->machines, options.from_version.c_str(),
              Str(Fleet(status)["bootstrap"], "node").c_str());
  std::string bump_command = "sed -i 's/talosVersion: " + options.from_version + "/talosVersion: v1.12.0/' " +
                             (plan->repo / plan->cluster_file).string() + " && git -C " +
                             plan->repo.string() + " commit -qam 'talos v1.12.0'";
  if (upgrade_to.empty()) {
    std::printf("\nstart a rolling upgrade with:\n  %s\nwatch it with:\n  ironboot status --server %s\n"
                "Ctrl-C stops the demo.\n",
                bump_command.c_str(), base.c_str());
    std::fflush(stdout);
    while (SleepUnlessStopped(std::chrono::milliseconds(500))) {
      if (!serve.Running() || !fleet.Running()) {
        std::fprintf(stderr, "ironboot demo: a child exited; see the logs in %s\n", dir.c_str());
        return 1;
      }
    }
    return 0;
  }

  // Phase 2: the upgrade.
  if (auto c = CommitTalosVersion(*plan, upgrade_to); !c) {
    std::fprintf(stderr, "ironboot demo: %s\n", c.error().message.c_str());
    return 1;
  }
  std::printf("committed spec.talosVersion: %s (%s)\n", upgrade_to.c_str(),
              (plan->repo / plan->cluster_file).c_str());
  std::fflush(stdout);
  auto rollout_started = std::chrono::steady_clock::now();
  std::string last_line;
  int last_done = -1;
  while (true) {
    if (!SleepUnlessStopped(std::chrono::milliseconds(200))) {
      return 130;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "ironboot demo: not converged within %s; see %s/status\n",
                   flags.Get("timeout").c_str(), base.c_str());
      return flags.GetBool("exit-when-done") ? 1 : 0;
    }
    if (!serve.Running()) {
      std::fprintf(stderr, "ironboot demo: ironboot serve exited; see %s/serve.log\n", dir.c_str());
      return 1;
    }
    auto got = GetJson(base + "/status");
    if (!got) {
      continue;
    }
    json f = Fleet(*got);
    if (f.is_null() || !f.contains("rollout")) {
      continue;
    }
    const json& rollout = f["rollout"];
    int done = 0;
    for (const auto& m : f["machines"]) {
      done += Str(m, "observed") == upgrade_to && m.value("ready", false) ? 1 : 0;
    }
    std::string line;
    for (const auto& step : rollout.value("steps", json::array())) {
      line += (line.empty() ? "" : "; ") + StepLine(step);
    }
    if (line.empty() && !Str(rollout, "blocked_reason").empty()) {
      line = "waiting: " + Str(rollout, "blocked_reason");
    }
    if (!line.empty() && (line != last_line || done != last_done)) {
      auto t = std::chrono::duration<double>(std::chrono::steady_clock::now() - rollout_started).count();
      std::printf("[%d/%zu] %6.1fs  %s\n", done, plan->machines, t, line.c_str());
      std::fflush(stdout);
      last_line = line;
      last_done = done;
    }
    if (Str(rollout, "state") == "halted") {
      std::fprintf(stderr, "ironboot demo: rollout halted: %s\n", Str(rollout, "halted_reason").c_str());
      if (flags.GetBool("exit-when-done")) {
        return 1;
      }
    }
    if (done == static_cast<int>(plan->machines) && rollout.value("steps", json::array()).empty()) {
      auto t = std::chrono::duration<double>(std::chrono::steady_clock::now() - rollout_started).count();
      std::printf("[%d/%zu] converged: every machine runs %s (%.1fs, %lld steps)\n", done,
                  plan->machines, upgrade_to.c_str(), t,
                  static_cast<long long>(rollout.value("completed_steps", 0)));
      std::fflush(stdout);
      if (flags.GetBool("exit-when-done")) {
        return 0;
      }
      while (SleepUnlessStopped(std::chrono::milliseconds(500))) {
      }
      return 0;
    }
  }
}

}  // namespace ironboot::controller
