// `ironboot serve`: the boot server, Matchbox-compatible. Checks flags and
// wires the parts together; decides nothing itself.

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include <prometheus/registry.h>

#include "bootserver/data_dir_watcher.h"
#include "bootserver/handler.h"
#include "bootserver/http_server.h"
#include "bootserver/metrics.h"
#include "bootserver/store_holder.h"
#include "common/log.h"
#include "controller/commands.h"
#include "controller/flags.h"

namespace ironboot::controller {
namespace fs = std::filesystem;

namespace {

constexpr char kSynopsis[] =
    "ironboot serve [flags]\n\n"
    "Serves iPXE/GRUB boot scripts, metadata, generic templates and assets from a\n"
    "Matchbox data dir (groups/, profiles/, generic/, assets/), reloading it when files\n"
    "change. Drop-in for `matchbox`: the same flags and MATCHBOX_* variables.\n"
    "Also serves /metrics, /healthz and /readyz.";

void DeclareFlags(FlagSet& flags) {
  flags.String("address", "127.0.0.1:8080", "HTTP listen address", {"MATCHBOX_ADDRESS"});
  flags.String("data-path", "/var/lib/matchbox", "path to the data directory",
               {"MATCHBOX_DATA_PATH"});
  flags.String("assets-path", "", "path to static assets; \"\" disables /assets/ (default <data-path>/assets)",
               {"MATCHBOX_ASSETS_PATH"});
  flags.String("log-level", "info", "log level: debug, info, warn, error", {"MATCHBOX_LOG_LEVEL"});
  flags.String("max-connections", "4096", "concurrent HTTP connections; more get 503",
               {"IRONBOOT_MAX_CONNECTIONS"});
  flags.String("read-timeout", "10s", "time allowed to send a whole request", {"IRONBOOT_READ_TIMEOUT"});
  flags.String("idle-timeout", "60s", "keep-alive connection idle limit", {"IRONBOOT_IDLE_TIMEOUT"});
  flags.String("shutdown-grace", "10s", "on SIGTERM/SIGINT, time in-flight requests get to finish",
               {"IRONBOOT_SHUTDOWN_GRACE"});
  flags.String("threads", "2", "HTTP worker threads", {"IRONBOOT_THREADS"});
  // Matchbox flags for features ironboot does not have: accepted so an existing
  // unit starts, and warned about.
  for (const char* name : {"rpc-address", "cert-file", "key-file", "ca-file"}) {
    std::string env = "MATCHBOX_" + std::string(name);
    for (auto& c : env) {
      c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    flags.String(name, "", "Matchbox gRPC API flag: accepted and ignored (no gRPC API)", {env});
  }
  flags.Bool("version", "print the version and exit");
  flags.Bool("help", "show this help");
}

// "10s", "500ms", "2m", or plain seconds.
Result<std::chrono::milliseconds> ParseDuration(const std::string& flag, const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  std::string unit = text.substr(used);
  double ms = -1;
  if (used > 0 && value >= 0) {
    if (unit == "ms") {
      ms = value;
    } else if (unit == "s" || unit.empty()) {
      ms = value * 1000;
    } else if (unit == "m") {
      ms = value * 60000;
    } else if (unit == "h") {
      ms = value * 3600000;
    }
  }
  if (ms < 0) {
    return Fail(ErrorCode::kInvalid,
                "serve: flag -" + flag + ": \"" + text + "\" is not a duration (want e.g. 500ms, 10s, 2m)");
  }
  return std::chrono::milliseconds(static_cast<long long>(ms));
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
  auto threads = ParseCount("threads", flags.Get("threads"), 1, 256);
  for (const Error* e : {read_timeout ? nullptr : &read_timeout.error(),
                         idle_timeout ? nullptr : &idle_timeout.error(),
                         grace ? nullptr : &grace.error(), max_conn ? nullptr : &max_conn.error(),
                         threads ? nullptr : &threads.error()}) {
    if (e != nullptr) {
      return Die(*e);
    }
  }
  server_options.read_timeout = *read_timeout;
  server_options.idle_timeout = *idle_timeout;
  server_options.max_connections = static_cast<size_t>(*max_conn);
  server_options.threads = static_cast<int>(*threads);

  fs::path data_path = flags.Get("data-path");
  std::error_code ec;
  if (!fs::is_directory(data_path, ec)) {
    return Die(Error{ErrorCode::kNotFound, "serve: -data-path " + data_path.string() +
                                               " is not a directory (want a Matchbox data dir "
                                               "with groups/ and profiles/)"});
  }
  bootserver::BootHandler::Options handler_options;
  std::string assets = flags.IsSet("assets-path") ? flags.Get("assets-path")
                                                  : (data_path / "assets").string();
  if (!assets.empty()) {
    fs::path canonical = fs::weakly_canonical(fs::absolute(assets), ec);
    if (!fs::is_directory(canonical, ec)) {
      log->warn("assets path {} is not a directory: /assets/ answers 404 until it exists", assets);
    }
    handler_options.assets_path = canonical;
  }

  // Block the shutdown signals in every thread; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto registry = std::make_shared<prometheus::Registry>();
  bootserver::HttpMetrics metrics(registry);
  bootserver::StoreHolder holder;
  bootserver::DataDirWatcher watcher(data_path, &holder, &metrics);
  if (auto loaded = watcher.Reload(); !loaded) {
    holder.SetNotReadyReason(loaded.error().message);
  }
  watcher.Start();

  bootserver::BootHandler handler(handler_options, &holder, &metrics);
  bootserver::HttpServer server(server_options, &handler);
  if (auto started = server.Start(); !started) {
    return Die(started.error());
  }
  log->info("serving address={} port={} data_path={} assets_path={}", server_options.address,
            server.port(), data_path.string(),
            handler_options.assets_path ? handler_options.assets_path->string() : "(disabled)");

  while (true) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      log->info("SIGHUP: reloading {}", data_path.string());
      (void)watcher.Reload();
      continue;
    }
    log->info("signal={}: draining (grace {} ms)", sig == SIGINT ? "SIGINT" : "SIGTERM",
              grace->count());
    break;
  }
  server.Shutdown(*grace);
  watcher.Stop();
  log->info("stopped");
  return 0;
}

}  // namespace ironboot::controller
