// `ironboot serve`: the boot server, Matchbox-compatible. Checks flags and
// wires the parts together; decides nothing itself.

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "bootserver/data_dir_watcher.h"
#include "bootserver/handler.h"
#include "bootserver/http_server.h"
#include "bootserver/metrics.h"
#include "bootserver/store_holder.h"
#include "bootserver/tftp_server.h"
#include "common/internal_errors.h"
#include "common/json_text.h"
#include "common/log.h"
#include "controller/commands.h"
#include "controller/flags.h"
#include "controller/upgrade_loop.h"
#include "reconcilers/observed_state.h"
#include "talos/api_client.h"
#include "talos/talosconfig.h"
#include "controller/git_source.h"
#include "controller/gitops.h"
#include "controller/webhook.h"
#include "reconcilers/asset_cache.h"
#include "talos/secrets_bundle.h"

namespace ironboot::controller {
namespace fs = std::filesystem;

namespace {

constexpr char kSynopsis[] =
    "ironboot serve [flags]\n\n"
    "Matchbox mode (no -repo): serves iPXE/GRUB boot scripts, metadata, generic templates\n"
    "and assets from a Matchbox data dir (groups/, profiles/, generic/, assets/), reloading\n"
    "it when files change. Drop-in for `matchbox`: the same flags and MATCHBOX_* variables.\n\n"
    "GitOps mode (-repo URL): follows a cluster repository in git, validates and renders it,\n"
    "downloads and verifies the Talos assets it needs, and serves the result; a bad commit\n"
    "never replaces the last good plan. Adds /config?mac=, /status and POST /hooks/git.\n\n"
    "Every mode serves /metrics, /healthz and /readyz.";

void DeclareFlags(FlagSet& flags) {
  flags.String("address", "127.0.0.1:8080", "HTTP listen address", {"MATCHBOX_ADDRESS"});
  flags.String("data-path", "/var/lib/matchbox", "path to the data directory",
               {"MATCHBOX_DATA_PATH"});
  flags.String("assets-path", "", "path to static assets; \"\" disables /assets/ (default <data-path>/assets)",
               {"MATCHBOX_ASSETS_PATH"});
  flags.String("log-level", "info", "log level: debug, info, warn, error", {"MATCHBOX_LOG_LEVEL"});
  flags.String("max-connections", "4096",
               "concurrent HTTP connections; more get 503 (lowered to what the open-file limit "
               "allows)",
               {"IRONBOOT_MAX_CONNECTIONS"});
  flags.String("max-connections-per-client", "64",
               "concurrent HTTP connections from one client address; more get 503",
               {"IRONBOOT_MAX_CONNECTIONS_PER_CLIENT"});
  flags.String("first-byte-timeout", "10s",
               "time a new connection gets to send the first byte of its request",
               {"IRONBOOT_FIRST_BYTE_TIMEOUT"});
  flags.String("read-timeout", "10s", "time allowed to send a whole request", {"IRONBOOT_READ_TIMEOUT"});
  flags.String("idle-timeout", "60s", "keep-alive connection idle limit", {"IRONBOOT_IDLE_TIMEOUT"});
  flags.String("shutdown-grace", "10s", "on SIGTERM/SIGINT, time in-flight requests get to finish",
               {"IRONBOOT_SHUTDOWN_GRACE"});
  flags.String("threads", "2", "HTTP worker threads", {"IRONBOOT_THREADS"});
  flags.String("tftp-address", "", "TFTP listen address, e.g. 0.0.0.0:69; off when empty",
               {"IRONBOOT_TFTP_ADDRESS"});
  flags.String("tftp-root", "", "directory served over TFTP before Debian's iPXE binaries "
               "(undionly.kpxe, ipxe.efi)", {"IRONBOOT_TFTP_ROOT"});
  flags.String("tftp-max-transfers", "64", "concurrent TFTP transfers; more are refused",
               {"IRONBOOT_TFTP_MAX_TRANSFERS"});
  flags.String("tftp-max-transfers-per-client", "4",
               "concurrent TFTP transfers from one client address; more are refused",
               {"IRONBOOT_TFTP_MAX_TRANSFERS_PER_CLIENT"});
  flags.String("tftp-progress-deadline", "20s",
               "a TFTP transfer whose client acknowledges nothing new for this long is dropped",
               {"IRONBOOT_TFTP_PROGRESS_DEADLINE"});
  // Matchbox flags for features ironboot does not have: accepted so an existing
  // unit starts, and warned about.
  for (const char* name : {"rpc-address", "cert-file", "key-file", "ca-file"}) {
    std::string env = "MATCHBOX_" + std::string(name);
    for (auto& c : env) {
      c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    flags.String(name, "", "Matchbox gRPC API flag: accepted and ignored (no gRPC API)", {env});
  }
  // GitOps mode.
  flags.String("config", "", "YAML file of flag values (keys are flag names); flags and environment win",
               {"IRONBOOT_CONFIG"});
  flags.String("repo", "", "cluster repository URL (path, file://, git://, http(s)://, ssh://); enables GitOps mode",
               {"IRONBOOT_REPO"});
  flags.String("ref", "", "branch, tag or commit to follow (default: the remote's HEAD branch)",
               {"IRONBOOT_REF"});
  flags.String("path", "", "subdirectory of the repository holding the manifests", {"IRONBOOT_PATH"});
  flags.String("interval", "30s", "how often to poll the repository", {"IRONBOOT_INTERVAL"});
  flags.String("state-dir", "/var/lib/ironboot", "git mirror, verified assets and the last good plan",
               {"IRONBOOT_STATE_DIR"});
  flags.String("git-token-file", "", "file holding an HTTPS token for the repository",
               {"IRONBOOT_GIT_TOKEN_FILE"});
  flags.String("git-basic-auth-file", "", "file holding user:password for HTTPS",
               {"IRONBOOT_GIT_BASIC_AUTH_FILE"});
  flags.String("git-username", "", "user for HTTPS tokens and ssh (default from the URL)",
               {"IRONBOOT_GIT_USERNAME"});
  flags.String("git-ca-file", "", "PEM CA bundle trusted for an https repository (replaces the system store)",
               {"IRONBOOT_GIT_CA_FILE"});
  flags.String("git-ssh-key-file", "", "ssh private key file", {"IRONBOOT_GIT_SSH_KEY_FILE"});
  flags.String("git-known-hosts-file", "", "ssh known_hosts file (required for ssh)",
               {"IRONBOOT_GIT_KNOWN_HOSTS_FILE"});
  flags.String("webhook-secret-file", "", "file holding the push-webhook secret (GitHub/Gitea HMAC, GitLab token); "
               "without it POST /hooks/git answers 401",
               {"IRONBOOT_WEBHOOK_SECRET_FILE"});
  flags.String("age-identity", "", "age identity file (AGE-SECRET-KEY-1...) that decrypts the repo's "
               "secrets.yaml.age in memory, when -secrets-file is not given",
               {"IRONBOOT_AGE_IDENTITY"});
  flags.String("secrets-file", "", "cluster secrets bundle (talosctl gen secrets / ironboot secrets gen YAML, "
               "kept outside the repo): base configs are generated from it instead of spec.baseConfigs",
               {"IRONBOOT_SECRETS_FILE"});
  flags.String("talosconfig", "", "talosconfig whose credentials the upgrade reconciler uses for the Talos API "
               "(default: an os:admin certificate made in memory from -secrets-file); without either, "
               "no bootstrap and no rolling upgrades", {"IRONBOOT_TALOSCONFIG"});
  flags.String("talos-api-timeout", "5s", "deadline of each Talos API call", {"IRONBOOT_TALOS_API_TIMEOUT"});
  flags.String("upgrade-interval", "1s", "how often the upgrade reconciler observes and acts",
               {"IRONBOOT_UPGRADE_INTERVAL"});
  flags.String("talos-poll-interval", "10s", "how often healthy machines outside a rollout step are polled "
               "(machines in a step, unhealthy or unseen ones: every -upgrade-interval)",
               {"IRONBOOT_TALOS_POLL_INTERVAL"});
  flags.String("reboot-grace", "30s", "after a restart, how long a reboot sent just before it gets to show "
               "before it is sent again", {"IRONBOOT_REBOOT_GRACE"});
  flags.String("config-window", "10m", "GitOps /config: for a machine without a static address, how long "
               "the first address to fetch its iPXE script may fetch its config (renewed by its next fetch); "
               "also how long a token lasts",
               {"IRONBOOT_CONFIG_WINDOW"});
  flags.Bool("config-token", "GitOps /config: also require a token, put in the talos.config= URL "
             "of the iPXE script served to the address that may fetch the config", {"IRONBOOT_CONFIG_TOKEN"});
  flags.String("config-rate", "10/m", "GitOps /config: requests per client address (N/s, N/m, N/h; 0: no limit)",
               {"IRONBOOT_CONFIG_RATE"});
  flags.String("config-burst", "5", "GitOps /config: requests a client address may make at once",
               {"IRONBOOT_CONFIG_BURST"});
  flags.String("config-tls-address", "", "HTTPS listen address for /config (e.g. 0.0.0.0:8443; it serves "
               "/config only, with the same checks); off when empty", {"IRONBOOT_CONFIG_TLS_ADDRESS"});
  flags.String("config-tls-cert-file", "", "PEM server certificate chain of -config-tls-address (re-read on SIGHUP)",
               {"IRONBOOT_CONFIG_TLS_CERT_FILE"});
  flags.String("config-tls-key-file", "", "PEM private key of -config-tls-cert-file (re-read on SIGHUP)",
               {"IRONBOOT_CONFIG_TLS_KEY_FILE"});
  flags.Bool("config-tls-only", "refuse /config on -address (403, counted as result=denied_tls); "
             "needs -config-tls-address and an https -config-url", {"IRONBOOT_CONFIG_TLS_ONLY"});
  flags.String("config-url", "", "base URL machines fetch /config from, e.g. https://boot.lan:8443: replaces "
               "the part before /config of the talos.config= URL in served iPXE and GRUB scripts "
               "(default: the Cluster's spec.bootServerURL)", {"IRONBOOT_CONFIG_URL"});
  flags.Bool("version", "print the version and exit");
  flags.Bool("help", "show this help");
}

Result<std::chrono::milliseconds> ParseDuration(const std::string& flag, const std::string& text) {
  return ParseFlagDuration("serve", flag, text);
}

Result<long> ParseCount(const std::string& flag, const std::string& text, long min, long max) {
  try {
    size_t used = 0;
    long v = std::stol(text, &used);
    if (used == text.size() && v >= min && v <= max) {
      return v;
    }
  } catch (...) {
  }
  return Fail(ErrorCode::kInvalid, "serve: flag -" + flag + ": \"" + text + "\" is not a number in " +
                                       std::to_string(min) + ".." + std::to_string(max));
}

int Die(const Error& e) {
  std::fprintf(stderr, "ironboot: %s\n", e.message.c_str());
  return 2;
}

}  // namespace

int ServeCommand(Args args) {
  FlagSet flags("serve");
  DeclareFlags(flags);
  if (auto ok = flags.Parse(args); !ok) {
    return Die(ok.error());
  }
  if (!flags.Get("config").empty()) {
    if (auto applied = flags.ApplyConfigFile(flags.Get("config")); !applied) {
      return Die(applied.error());
    }
  }
  if (flags.GetBool("help")) {
    std::printf("%s", flags.Usage(kSynopsis).c_str());
    return 0;
  }
  if (flags.GetBool("version")) {
    std::printf("ironboot 0.1.0\n");
    return 0;
  }
  if (!flags.positional().empty()) {
    return Die(Error{ErrorCode::kInvalid,
                     "serve: unexpected argument \"" + flags.positional()[0] + "\""});
  }
  if (!SetLogLevel(flags.Get("log-level"))) {
    return Die(Error{ErrorCode::kInvalid, "serve: flag -log-level: \"" + flags.Get("log-level") +
                                              "\" is not one of debug, info, warn, error"});
  }
  auto log = Logger("serve");
  for (const char* name : {"rpc-address", "cert-file", "key-file", "ca-file"}) {
    if (flags.IsSet(name)) {
      log->warn("flag -{} is ignored: ironboot has no Matchbox gRPC API", name);
    }
  }

  bootserver::ServerOptions server_options;
  server_options.address = flags.Get("address");
  auto read_timeout = ParseDuration("read-timeout", flags.Get("read-timeout"));
  auto idle_timeout = ParseDuration("idle-timeout", flags.Get("idle-timeout"));
  auto grace = ParseDuration("shutdown-grace", flags.Get("shutdown-grace"));
  auto max_conn = ParseCount("max-connections", flags.Get("max-connections"), 1, 1000000);
  auto per_client = ParseCount("max-connections-per-client",
                               flags.Get("max-connections-per-client"), 1, 1000000);
  auto first_byte = ParseDuration("first-byte-timeout", flags.Get("first-byte-timeout"));
  auto threads = ParseCount("threads", flags.Get("threads"), 1, 256);
  for (const Error* e : {read_timeout ? nullptr : &read_timeout.error(),
                         idle_timeout ? nullptr : &idle_timeout.error(),
                         grace ? nullptr : &grace.error(), max_conn ? nullptr : &max_conn.error(),
                         threads ? nullptr : &threads.error(),
                         per_client ? nullptr : &per_client.error(),
                         first_byte ? nullptr : &first_byte.error()}) {
    if (e != nullptr) {
      return Die(*e);
    }
  }
  server_options.read_timeout = *read_timeout;
  server_options.idle_timeout = *idle_timeout;
  server_options.max_connections = static_cast<size_t>(*max_conn);
  server_options.max_connections_per_client = static_cast<size_t>(*per_client);
  server_options.first_byte_timeout = *first_byte;
  server_options.threads = static_cast<int>(*threads);

  const bool gitops = !flags.Get("repo").empty();
  fs::path data_path = flags.Get("data-path");
  std::error_code ec;
  if (!gitops && !fs::is_directory(data_path, ec)) {
    return Die(Error{ErrorCode::kNotFound, "serve: -data-path " + data_path.string() +
                                               " is not a directory (want a Matchbox data dir "
                                               "with groups/ and profiles/, or -repo URL)"});
  }
  bootserver::BootHandler::Options handler_options;
  std::string assets = flags.IsSet("assets-path") ? flags.Get("assets-path")
                       : gitops                   ? std::string()
                                                  : (data_path / "assets").string();
  if (!assets.empty()) {
    fs::path canonical = fs::weakly_canonical(fs::absolute(assets), ec);
    if (!fs::is_directory(canonical, ec)) {
      log->warn("assets path {} is not a directory: /assets/ answers 404 until it exists", assets);
    }
    handler_options.assets_path = canonical;
  }
  auto interval = ParseDuration("interval", flags.Get("interval"));
  if (!interval) {
    return Die(interval.error());
  }
  std::string webhook_secret;
  if (!flags.Get("webhook-secret-file").empty()) {
    std::ifstream in(flags.Get("webhook-secret-file"), std::ios::binary);
    if (!in) {
      return Die(Error{ErrorCode::kNotFound, "serve: -webhook-secret-file " +
                                                 flags.Get("webhook-secret-file") + " cannot be read"});
    }
    std::stringstream ss;
    ss << in.rdbuf();
    webhook_secret = ss.str();
    while (!webhook_secret.empty() &&
           (webhook_secret.back() == '\n' || webhook_secret.back() == '\r' ||
            webhook_secret.back() == ' ')) {
      webhook_secret.pop_back();
    }
  }

  std::shared_ptr<const talos::SecretsBundle> secrets;
  if (!flags.Get("secrets-file").empty()) {
    auto loaded = talos::LoadSecretsBundleFile(flags.Get("secrets-file"));
    if (!loaded) {
      return Die(Error{loaded.error().code, "serve: -secrets-file: " + loaded.error().message});
    }
    secrets = std::make_shared<const talos::SecretsBundle>(std::move(*loaded));
  }

  // Block the shutdown signals in every thread; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto registry = std::make_shared<prometheus::Registry>();
  ExportInternalErrors(registry);
  std::string upgrade_off_reason;  // set when the upgrade reconciler cannot start
  auto clock = std::make_shared<SystemClock>();

  // The Talos API client of the upgrade reconciler (GitOps mode).
  talos::NodeClientPtr talos_client;
  std::unique_ptr<UpgradeLoop> upgrade;
  reconcilers::ObservedState observed;
  UpgradeLoopOptions upgrade_options;
  if (gitops) {
    auto timeout = ParseDuration("talos-api-timeout", flags.Get("talos-api-timeout"));
    auto every = ParseDuration("upgrade-interval", flags.Get("upgrade-interval"));
    auto idle = ParseDuration("talos-poll-interval", flags.Get("talos-poll-interval"));
    auto grace = ParseDuration("reboot-grace", flags.Get("reboot-grace"));
    for (const Error* e : {timeout ? nullptr : &timeout.error(), every ? nullptr : &every.error(),
                           idle ? nullptr : &idle.error(), grace ? nullptr : &grace.error()}) {
      if (e != nullptr) {
        return Die(*e);
      }
    }
    upgrade_options.state_dir = flags.Get("state-dir");
    upgrade_options.interval = *every;
    upgrade_options.idle_poll_interval = *idle;
    upgrade_options.reboot_grace = std::chrono::duration_cast<std::chrono::seconds>(*grace);
    Result<talos::TalosCredentials> credentials = Fail(ErrorCode::kNotFound, "");
    if (!flags.Get("talosconfig").empty()) {
      credentials = talos::LoadTalosconfigCredentials(flags.Get("talosconfig"));
      if (!credentials) {
        return Die(Error{credentials.error().code, "serve: -talosconfig: " + credentials.error().message});
      }
    } else if (secrets) {
      talos::TalosconfigOptions tc;
      tc.context = "ironboot";
      tc.endpoints = {"127.0.0.1"};
      auto yaml = talos::GenerateTalosconfig(*secrets, tc, *clock);
      if (!yaml) {
        return Die(Error{yaml.error().code, "serve: a Talos API client certificate from -secrets-file: " +
                                                yaml.error().message});
      }
      credentials = talos::ParseTalosconfigCredentials(*yaml, "(generated from -secrets-file)");
    }
    if (credentials) {
      talos::TalosApiOptions api_options;
      api_options.deadline = std::chrono::duration_cast<std::chrono::milliseconds>(*timeout);
      auto client = talos::TalosApiClient::Create(std::move(*credentials), api_options);
      if (!client) {
        return Die(Error{client.error().code, "serve: Talos API credentials: " + client.error().message});
      }
      talos_client = std::move(*client);
    } else {
      log->warn("no -talosconfig and no -secrets-file: no bootstrap and no rolling upgrades (the boot "
                "server and GitOps loop run)");
    }
  }
  bootserver::HttpMetrics metrics(registry);
  bootserver::StoreHolder holder;
  std::unique_ptr<bootserver::DataDirWatcher> watcher;
  std::unique_ptr<reconcilers::AssetCache> asset_cache;
  std::unique_ptr<GitOpsController> controller;
  if (gitops) {
    GitSourceOptions source_options;
    source_options.url = flags.Get("repo");
    source_options.ref = flags.Get("ref");
    source_options.path = flags.Get("path");
    source_options.state_dir = flags.Get("state-dir");
    source_options.credentials.token_file = flags.Get("git-token-file");
    source_options.credentials.basic_auth_file = flags.Get("git-basic-auth-file");
    source_options.credentials.username = flags.Get("git-username");
    source_options.credentials.ssh_key_file = flags.Get("git-ssh-key-file");
    source_options.credentials.ssh_known_hosts_file = flags.Get("git-known-hosts-file");
    source_options.ca_file = flags.Get("git-ca-file");
    fs::create_directories(source_options.state_dir, ec);
    if (ec) {
      return Die(Error{ErrorCode::kInvalid, "serve: -state-dir " + source_options.state_dir.string() +
                                                " cannot be created: " + ec.message()});
    }
    auto source = GitSource::Create(source_options);
    if (!source) {
      return Die(source.error());
    }
    asset_cache = std::make_unique<reconcilers::AssetCache>(source_options.state_dir, registry, clock);
    GitOpsOptions gitops_options;
    if (talos_client) {
      gitops_options.on_publish = [&observed, &upgrade](std::shared_ptr<const reconcilers::PublishedPlan> plan) {
        observed.SetPlan(std::shared_ptr<const manifests::BootPlan>(plan, &plan->plan));
        if (upgrade) {
          upgrade->Wake();  // a step waiting for its release to be served goes on now
        }
      };
      gitops_options.local_boot = [&upgrade] {
        return upgrade ? upgrade->LocalBoot() : std::set<std::string>{};
      };
      gitops_options.pins = [&upgrade] {
        return upgrade ? upgrade->Pins() : std::map<std::string, std::string>{};
      };
    }
    gitops_options.state_dir = source_options.state_dir;
    gitops_options.interval = *interval;
    gitops_options.secrets = secrets;
    gitops_options.age_identity_file = flags.Get("age-identity");
    controller = std::make_unique<GitOpsController>(gitops_options, std::move(*source),
                                                    asset_cache.get(), &holder, &metrics,
                                                    registry, clock);
    holder.SetNotReadyReason("waiting for the first good revision of " + flags.Get("repo"));
    controller->RestoreLastGood();
    if (talos_client) {
      upgrade = std::make_unique<UpgradeLoop>(upgrade_options, controller.get(), talos_client,
                                              &observed, registry, clock);
      if (auto loaded = upgrade->Load(); !loaded) {
        // Booting must not depend on the rollout's bookkeeping: serve on
        // without the reconciler, and say why everywhere an operator looks.
        upgrade_off_reason = "the upgrade reconciler is off: " + loaded.error().message +
                             " (booting goes on; no Reboot, Upgrade or Bootstrap is sent until "
                             "the file is repaired or moved aside and serve restarted)";
        log->error("{}", upgrade_off_reason);
        upgrade.reset();
      }
    }
  } else {
    watcher = std::make_unique<bootserver::DataDirWatcher>(data_path, &holder, &metrics);
    if (auto loaded = watcher->Reload(); !loaded) {
      holder.SetNotReadyReason(loaded.error().message);
    }
    watcher->Start();
  }

  // /config only to its machine (GitOps mode; Matchbox mode has no machine configs).
  bootserver::ConfigAccessOptions access_options;
  {
    auto window = ParseDuration("config-window", flags.Get("config-window"));
    auto rate = bootserver::ParseConfigRate("config-rate", flags.Get("config-rate"));
    auto burst = ParseCount("config-burst", flags.Get("config-burst"), 1, 1000000);
    for (const Error* e : {window ? nullptr : &window.error(), rate ? nullptr : &rate.error(),
                           burst ? nullptr : &burst.error()}) {
      if (e != nullptr) {
        return Die(*e);
      }
    }
    access_options.window = *window;
    access_options.rate_per_second = *rate;
    access_options.burst = static_cast<double>(*burst);
    access_options.tokens = flags.GetBool("config-token");
  }
  bootserver::ConfigAccess config_access(access_options, clock);
  if (gitops) {
    handler_options.config_access = &config_access;
  }
  // /config over HTTPS (bootserver/CONFIG_TLS.md).
  bootserver::ServerOptions tls_options = server_options;
  tls_options.address = flags.Get("config-tls-address");
  tls_options.tls_cert_file = flags.Get("config-tls-cert-file");
  tls_options.tls_key_file = flags.Get("config-tls-key-file");
  tls_options.only_paths = {"/config"};
  tls_options.threads = 1;
  if (!flags.Get("config-url").empty()) {
    auto base = bootserver::ParseConfigUrlBase("config-url", flags.Get("config-url"));
    if (!base) {
      return Die(Error{base.error().code, "serve: " + base.error().message});
    }
    handler_options.config_url_base = *base;
  }
  handler_options.config_tls_only = flags.GetBool("config-tls-only");
  if (tls_options.address.empty() != tls_options.tls_cert_file.empty() ||
      tls_options.address.empty() != tls_options.tls_key_file.empty()) {
    return Die(Error{ErrorCode::kInvalid, "serve: -config-tls-address, -config-tls-cert-file and "
                                          "-config-tls-key-file go together (set all three or none)"});
  }
  if (handler_options.config_tls_only &&
      (tls_options.address.empty() || !handler_options.config_url_base.starts_with("https://"))) {
    return Die(Error{ErrorCode::kInvalid,
                     "serve: -config-tls-only needs -config-tls-address and -config-url https://HOST:PORT "
                     "(the HTTPS listener machines are sent to); without them no machine could fetch "
                     "its config"});
  }
  if (upgrade) {
    handler_options.observer = [&observed, clock](const bootserver::HttpRequest& req,
                                                  const bootserver::Reply& reply) {
      observed.OnRequest(req, reply, clock->Now());
    };
  }
  auto& disabled = prometheus::BuildGauge()
                       .Name("ironboot_reconciler_disabled")
                       .Help("1 while a reconciler is off because it could not start (the reason is "
                             "in the log, /status and /readyz); booting goes on")
                       .Register(*registry);
  disabled.Add({{"reconciler", "upgrade"}}).Set(upgrade_off_reason.empty() ? 0 : 1);
  if (!upgrade_off_reason.empty()) {
    handler_options.degraded.push_back(upgrade_off_reason);
  }
  bootserver::BootHandler handler(handler_options, &holder, &metrics);
  if (controller) {
    GitOpsController* c = controller.get();
    handler.AddRoute("/status", "status", {bootserver::http::verb::get, bootserver::http::verb::head},
                     [c, u = upgrade.get(), upgrade_off_reason](const bootserver::HttpRequest& req) {
                       auto status = c->Status(bootserver::IsLoopbackAddress(req.client)
                                                   ? GitOpsController::StatusView::kLocal
                                                   : GitOpsController::StatusView::kPublic);
                       if (u != nullptr) {
                         status["fleet"] = u->Status();
                       } else if (!upgrade_off_reason.empty()) {
                         status["fleet"] = {{"disabled", upgrade_off_reason}};
                       }
                       return bootserver::TextReply(bootserver::http::status::ok,
                                                    JsonText(status, 2) + "\n", "application/json");
                     });
    std::string followed_ref = flags.Get("ref");
    handler.AddRoute(
        "/hooks/git", "hooks", {bootserver::http::verb::post},
        [c, webhook_secret, followed_ref](const bootserver::HttpRequest& req) {
          static auto hook_log = Logger("webhook");
          std::map<std::string, std::string> headers;
          for (const auto& field : req.message) {
            std::string name(field.name_string());
            for (auto& ch : name) {
              ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            }
            headers[name] = std::string(field.value());
          }
          auto check = VerifyWebhook(headers, req.message.body(), webhook_secret);
          if (!check.accepted()) {
            hook_log->warn("refused delivery client={}: {}", req.client, check.reason);
            return bootserver::TextReply(bootserver::http::status::unauthorized,
                                         "401 " + check.reason + "\n");
          }
          auto pushed = PushedRef(req.message.body());
          if (pushed && !followed_ref.empty() && !PushMatchesRef(*pushed, followed_ref)) {
            hook_log->info("ignored push to {} (following {})", *pushed, followed_ref);
            return bootserver::TextReply(bootserver::http::status::accepted,
                                         "202 ignored: push to " + *pushed + "\n");
          }
          c->Trigger(std::string(ProviderName(check.provider)) + " webhook" +
                     (pushed ? " push to " + *pushed : std::string()));
          return bootserver::TextReply(bootserver::http::status::accepted, "202 fetch triggered\n");
        });
  }
  bootserver::HttpServer server(server_options, &handler);
  if (auto started = server.Start(); !started) {
    return Die(started.error());
  }
  std::unique_ptr<bootserver::HttpServer> tls_server;
  if (!tls_options.address.empty()) {
    tls_server = std::make_unique<bootserver::HttpServer>(tls_options, &handler);
    if (auto started = tls_server->Start(); !started) {
      return Die(Error{started.error().code,
                       "serve: -config-tls-address " + tls_options.address + ": " + started.error().message});
    }
    log->info("serving /config over https address={} port={} tls_only={}", tls_options.address,
              tls_server->port(), handler_options.config_tls_only);
  }
  std::unique_ptr<bootserver::TftpServer> tftp;
  if (!flags.Get("tftp-address").empty()) {
    auto max_transfers = ParseCount("tftp-max-transfers", flags.Get("tftp-max-transfers"), 1, 100000);
    auto per_client = ParseCount("tftp-max-transfers-per-client",
                                 flags.Get("tftp-max-transfers-per-client"), 1, 100000);
    auto progress = ParseDuration("tftp-progress-deadline", flags.Get("tftp-progress-deadline"));
    if (!max_transfers) {
      return Die(max_transfers.error());
    }
    if (!per_client) {
      return Die(per_client.error());
    }
    if (!progress) {
      return Die(progress.error());
    }
    if (progress->count() <= 0) {
      return Die(Error{ErrorCode::kInvalid, "serve: flag -tftp-progress-deadline: \"" +
                                                flags.Get("tftp-progress-deadline") +
                                                "\" must be longer than 0"});
    }
    bootserver::TftpOptions tftp_options;
    tftp_options.address = flags.Get("tftp-address");
    tftp_options.max_transfers = static_cast<size_t>(*max_transfers);
    tftp_options.max_transfers_per_client = static_cast<size_t>(*per_client);
    tftp_options.progress_deadline = *progress;
    std::optional<fs::path> tftp_root;
    if (!flags.Get("tftp-root").empty()) {
      tftp_root = flags.Get("tftp-root");
    }
    tftp_options.roots = bootserver::DefaultTftpRoots(tftp_root);
    tftp = std::make_unique<bootserver::TftpServer>(tftp_options, registry);
    auto tftp_port = tftp->Start();
    if (!tftp_port) {
      return Die(tftp_port.error());
    }
    log->info("tftp serving address={} port={}", tftp_options.address, *tftp_port);
  }
  if (controller) {
    controller->Start();
    if (upgrade) {
      upgrade->Start();
    }
    log->info("serving address={} port={} repo=\"{}\" state_dir={}", server_options.address,
              server.port(), RedactUrl(flags.Get("repo")), flags.Get("state-dir"));
  } else {
    log->info("serving address={} port={} data_path={} assets_path={}", server_options.address,
              server.port(), data_path.string(),
              handler_options.assets_path ? handler_options.assets_path->string() : "(disabled)");
  }

  while (true) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      if (tls_server) {
        auto reloaded = tls_server->ReloadTls();
        if (reloaded) {
          log->info("SIGHUP: reloaded the /config TLS certificate");
        } else {
          log->warn("SIGHUP: keeping the old /config TLS certificate: {}", reloaded.error().message);
        }
      }
      if (watcher) {
        log->info("SIGHUP: reloading {}", data_path.string());
        (void)watcher->Reload();
      } else {
        controller->Trigger("SIGHUP");
      }
      continue;
    }
    log->info("signal={}: draining (grace {} ms)", sig == SIGINT ? "SIGINT" : "SIGTERM",
              grace->count());
    break;
  }
  server.Shutdown(*grace);
  if (tls_server) {
    tls_server->Shutdown(*grace);
  }
  if (tftp) {
    tftp->Stop();
  }
  if (watcher) {
    watcher->Stop();
  }
  if (upgrade) {
    upgrade->Stop();
  }
  if (controller) {
    controller->Stop();
  }
  log->info("stopped");
  return 0;
}

}  // namespace ironboot::controller
