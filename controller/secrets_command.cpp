// `ironboot secrets gen --out FILE [--force]`: a new Talos secrets bundle, in
// the format of `talosctl gen secrets`, generated natively with OpenSSL.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/log.h"
#include "controller/commands.h"
#include "talos/secrets_bundle.h"

namespace ironboot::controller {

namespace {

constexpr const char* kSecretsUsage =
    "usage: ironboot secrets gen --out FILE [--force] [--log-level LEVEL]\n"
    "\n"
    "Writes a new Talos secrets bundle (the format of `talosctl gen secrets`) to FILE,\n"
    "mode 0600: cluster id and secret, bootstrap and trustd tokens, the secretbox\n"
    "secret, the os (Ed25519), etcd, Kubernetes and aggregator (ECDSA P-256) CAs valid\n"
    "10 years, and an RSA-4096 service-account key. Keep it out of git.\n"
    "\n"
    "flags:\n"
    "  -o, --out FILE       where to write the bundle (refused if it exists)\n"
    "  --force              overwrite FILE\n"
    "  --log-level LEVEL    debug, info (default), warn, error\n";

}  // namespace

int SecretsCommand(Args args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::fputs(kSecretsUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] != "gen") {
    std::fprintf(stderr, "ironboot secrets: unknown subcommand \"%s\" (want gen)\n%s",
                 args[0].c_str(), kSecretsUsage);
    return 2;
  }
  std::string out;
  bool force = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::optional<std::string> {
      size_t eq = a.find('=');
      if (a.starts_with("--") && eq != std::string::npos) {
        return a.substr(eq + 1);
      }
      if (i + 1 >= args.size()) {
        return std::nullopt;
      }
      return args[++i];
    };
    std::string flag = a.substr(0, a.find('='));
    if (flag == "-h" || flag == "--help") {
      std::fputs(kSecretsUsage, stdout);
      return 0;
    } else if (flag == "--force") {
      force = true;
    } else if (flag == "-o" || flag == "--out" || flag == "--log-level") {
      auto v = value();
      if (!v) {
        std::fprintf(stderr, "ironboot secrets gen: %s needs a value\n", flag.c_str());
        return 2;
      }
      if (flag == "--log-level") {
        if (!SetLogLevel(*v)) {
          std::fprintf(stderr, "ironboot secrets gen: unknown log level \"%s\"\n", v->c_str());
          return 2;
        }
      } else {
        out = *v;
      }
    } else {
      std::fprintf(stderr, "ironboot secrets gen: unknown flag \"%s\"\n%s", a.c_str(),
                   kSecretsUsage);
      return 2;
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "ironboot secrets gen: --out FILE is required\n%s", kSecretsUsage);
    return 2;
  }
  std::error_code ec;
  if (!force && std::filesystem::exists(out, ec)) {
    std::fprintf(stderr, "ironboot secrets gen: %s exists (use --force to overwrite it)\n",
                 out.c_str());
    return 1;
  }
  auto log = Logger("secrets");
  log->debug("generating secrets bundle out={}", out);
  SystemClock clock;
  auto bundle = talos::GenerateSecrets(clock);
  if (!bundle) {
    std::fprintf(stderr, "ironboot secrets gen: %s\n", bundle.error().message.c_str());
    return 1;
  }
  if (auto w = WriteFileAtomically(out, talos::SaveSecretsBundle(*bundle), {.create_parents = false});
      !w) {
    std::fprintf(stderr, "ironboot secrets gen: %s\n", w.error().message.c_str());
    return 1;
  }
  log->info("wrote secrets bundle out={} mode=0600", out);
  return 0;
}

}  // namespace ironboot::controller
