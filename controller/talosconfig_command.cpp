// `ironboot talosconfig --secrets FILE --endpoints a,b [--name NAME] [--out FILE]`:
// a talosctl client config with a new os:admin certificate from the bundle's os CA.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/log.h"
#include "controller/commands.h"
#include "talos/secrets_bundle.h"
#include "talos/talosconfig.h"

namespace ironboot::controller {

namespace {

constexpr const char* kTalosconfigUsage =
    "usage: ironboot talosconfig --secrets FILE --endpoints A,B [--nodes A,B] [--name NAME]\n"
    "                            [--role os:admin] [--out FILE] [--log-level LEVEL]\n"
    "\n"
    "Writes a talosconfig for the cluster whose secrets bundle is FILE: a context named\n"
    "NAME (the cluster name; default \"ironboot\") with the control-plane endpoints, the os\n"
    "CA, and a new client certificate (Organization ROLE, clientAuth, valid 1 year).\n"
    "Without --out it goes to stdout; with --out the file is written with mode 0600.\n";

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string item =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) {
      out.push_back(item);
    }
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

}  // namespace

int TalosconfigCommand(Args args) {
  std::string secrets_path;
  std::string out;
  talos::TalosconfigOptions options;
  options.context = "ironboot";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string flag = a.substr(0, a.find('='));
    if (flag == "-h" || flag == "--help") {
      std::fputs(kTalosconfigUsage, stdout);
      return 0;
    }
    std::optional<std::string> v;
    if (a.starts_with("--") && a.find('=') != std::string::npos) {
      v = a.substr(a.find('=') + 1);
    } else if (i + 1 < args.size()) {
      v = args[++i];
    }
    if (flag != "--secrets" && flag != "--endpoints" && flag != "--nodes" && flag != "--name" &&
        flag != "--role" && flag != "--out" && flag != "-o" && flag != "--log-level") {
      std::fprintf(stderr, "ironboot talosconfig: unknown flag \"%s\"\n%s", a.c_str(),
                   kTalosconfigUsage);
      return 2;
    }
    if (!v) {
      std::fprintf(stderr, "ironboot talosconfig: %s needs a value\n", flag.c_str());
      return 2;
    }
    if (flag == "--secrets") {
      secrets_path = *v;
    } else if (flag == "--endpoints") {
      options.endpoints = SplitComma(*v);
    } else if (flag == "--nodes") {
      options.nodes = SplitComma(*v);
    } else if (flag == "--name") {
      options.context = *v;
    } else if (flag == "--role") {
      options.role = *v;
    } else if (flag == "--log-level") {
      if (!SetLogLevel(*v)) {
        std::fprintf(stderr, "ironboot talosconfig: unknown log level \"%s\"\n", v->c_str());
        return 2;
      }
    } else {
      out = *v;
    }
  }
  if (secrets_path.empty()) {
    std::fprintf(stderr, "ironboot talosconfig: --secrets FILE is required\n%s", kTalosconfigUsage);
    return 2;
  }
  auto log = Logger("talosconfig");
  log->debug("loading secrets bundle secrets={}", secrets_path);
  auto bundle = talos::LoadSecretsBundleFile(secrets_path);
  if (!bundle) {
    std::fprintf(stderr, "ironboot talosconfig: %s\n", bundle.error().message.c_str());
    return 1;
  }
  SystemClock clock;
  auto config = talos::GenerateTalosconfig(*bundle, options, clock);
  if (!config) {
    std::fprintf(stderr, "ironboot talosconfig: %s\n", config.error().message.c_str());
    return 1;
  }
  if (out.empty()) {
    std::fputs(config->c_str(), stdout);
    return 0;
  }
  if (auto w = WriteFileAtomically(out, *config, {.create_parents = false}); !w) {
    std::fprintf(stderr, "ironboot talosconfig: %s\n", w.error().message.c_str());
    return 1;
  }
  log->info("wrote talosconfig out={} context={} endpoints={}", out, options.context,
            options.endpoints.size());
  return 0;
}

}  // namespace ironboot::controller
