// `ironboot fleet`: runs a simulated Talos fleet (fleet/fleet.h) until
// SIGTERM/SIGINT: nodes network-boot through --boot-server and serve the
// Talos API with the --secrets bundle's os CA.

#include <signal.h>

#include <cstdio>

#include "common/log.h"
#include "controller/commands.h"
#include "controller/flags.h"
#include "fleet/fleet.h"
#include "manifests/loader.h"
#include "manifests/repo_dir.h"
#include "talos/secrets_bundle.h"

namespace ironboot::controller {
namespace {

int Die(const std::string& message, int code = 1) {
  std::fprintf(stderr, "ironboot fleet: %s\n", message.c_str());
  return code;
}

}  // namespace

int FleetCommand(Args args) {
  FlagSet flags("fleet");
  flags.String("boot-server", "", "boot server URL the nodes network-boot from (http://host:port)");
  flags.String(
      "secrets", "",
      "secrets bundle (talosctl gen secrets); its os CA signs the nodes' API certificates");
  flags.String("node", "",
               "a node: name=cp1,role=controlplane,mac=52:54:00:00:00:01,address=127.0.4.101", {},
               true);
  flags.String("repo", "",
               "also take nodes from a cluster repo dir's Machine documents (name, role, first "
               "MAC, address)");
  flags.String("fault", "",
               "inject a fault: "
               "<node>=never-returns|old-version|etcd-unhealthy|slow-boot=5s|refuses-reboot[,...]",
               {}, true);
  flags.String("reboot-delay", "2s", "how long a rebooting node stays down");
  flags.String("retry-interval", "1s", "between failed boot attempts");
  flags.String("etcd-join-delay", "500ms", "from a control plane coming up to it joining etcd");
  flags.String("api-port", "50000", "Talos API port on each node's address");
  flags.String("status-address", "", "serve GET /fleet (JSON record) on host:port; empty: off");
  flags.String("log-level", "info", "log level: debug, info, warn, error");
  flags.Bool("help", "show this help");
  flags.Bool("h", "show this help");
  const std::string synopsis =
      "ironboot fleet --boot-server URL --secrets FILE --node SPEC [--node SPEC ...] [flags]";
  if (auto r = flags.Parse(args); !r) {
    return Die(r.error().message + "\n\n" + flags.Usage(synopsis), 2);
  }
  if (flags.GetBool("help") || flags.GetBool("h")) {
    std::fputs(flags.Usage(synopsis).c_str(), stdout);
    return 0;
  }
  if (!SetLogLevel(flags.Get("log-level"))) {
    return Die("--log-level \"" + flags.Get("log-level") + "\": want debug, info, warn or error",
               2);
  }
  fleet::FleetOptions options;
  options.boot_server_url = flags.Get("boot-server");
  if (options.boot_server_url.empty()) {
    return Die("--boot-server is required (e.g. http://127.0.0.1:8080)", 2);
  }
  if (flags.Get("secrets").empty()) {
    return Die("--secrets is required (a secrets bundle: ironboot secrets gen --out FILE)", 2);
  }
  auto bundle = talos::LoadSecretsBundleFile(flags.Get("secrets"));
  if (!bundle) {
    return Die(bundle.error().message);
  }
  options.os_ca = bundle->os;
  for (const auto& text : flags.GetAll("node")) {
    auto spec = fleet::ParseNodeSpec(text);
    if (!spec) {
      return Die("--node: " + spec.error().message, 2);
    }
    options.nodes.push_back(*spec);
  }
  if (auto repo = flags.GetOptional("repo")) {
    auto files = manifests::ReadRepoDir(*repo);
    if (!files) {
      return Die("--repo: " + files.error().message);
    }
    manifests::LoadOptions load_options;
    load_options.base_configs_from_secrets = true;  // the fleet needs only the Machine documents
    auto state = manifests::Load(*files, load_options);
    if (!state) {
      return Die("--repo " + *repo + ": the repo does not load:\n" + state.error().ToString());
    }
    for (const auto& m : state->machines) {
      if (!m.address) {
        return Die("--repo " + *repo + ": machine " + m.name +
                   " has no static address (a simulated node needs one, e.g. 127.0.4.101)");
      }
      fleet::NodeSpec spec;
      spec.name = m.name;
      spec.role = m.role == manifests::Role::kControlPlane ? fleet::NodeRole::kControlPlane
                                                           : fleet::NodeRole::kWorker;
      spec.mac = m.macs.front();
      spec.address = m.address->address.ToString();
      spec.uuid = m.uuid;
      options.nodes.push_back(spec);
    }
  }
  if (options.nodes.empty()) {
    return Die(
        "no --node or --repo given (want at least one node: --node "
        "name=cp1,role=controlplane,mac=...,address=...)",
        2);
  }
  for (const auto& text : flags.GetAll("fault")) {
    auto eq = text.find('=');
    if (eq == std::string::npos) {
      return Die("--fault \"" + text + "\": want <node>=<fault>[,<fault>...]", 2);
    }
    auto faults = fleet::ParseFaults(text.substr(eq + 1));
    if (!faults) {
      return Die("--fault \"" + text + "\": " + faults.error().message, 2);
    }
    options.faults[text.substr(0, eq)] = *faults;
  }
  for (const auto& [flag, target] :
       {std::pair<const char*, std::chrono::milliseconds*>{"reboot-delay", &options.reboot_delay},
        {"retry-interval", &options.retry_interval},
        {"etcd-join-delay", &options.etcd_join_delay}}) {
    auto d = fleet::ParseFleetDuration(flags.Get(flag));
    if (!d) {
      return Die(std::string("--") + flag + ": " + d.error().message, 2);
    }
    *target = *d;
  }
  try {
    options.api_port = std::stoi(flags.Get("api-port"));
  } catch (...) {
    options.api_port = -1;
  }
  if (options.api_port <= 0 || options.api_port > 65535) {
    return Die("--api-port \"" + flags.Get("api-port") + "\": want a port number 1-65535", 2);
  }
  options.status_address = flags.Get("status-address");

  // Block the shutdown signals in every thread; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto running = fleet::Fleet::Start(std::move(options));
  if (!running) {
    return Die(running.error().message);
  }
  auto log = Logger("fleet");
  log->info("fleet running nodes={} boot_server={} status_port={}", flags.GetAll("node").size(),
            flags.Get("boot-server"), (*running)->status_port());
  int sig = 0;
  sigwait(&signals, &sig);
  log->info("signal={}; stopping the fleet", sig);
  (*running)->Stop();
  return 0;
}

}  // namespace ironboot::controller
