// `ironboot kubeconfig --talosconfig FILE --node ADDR [--out FILE]`: fetches a
// cluster's admin kubeconfig from a control plane's Talos API (as
// `talosctl kubeconfig` does) with the talosconfig's client certificate.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "common/atomic_file.h"
#include "common/log.h"
#include "common/duration.h"
#include "controller/commands.h"
#include "controller/flags.h"
#include "talos/api_client.h"

namespace ironboot::controller {

namespace {

constexpr char kKubeconfigUsage[] =
    "usage: ironboot kubeconfig --talosconfig FILE --node ADDR [--context NAME] [--out FILE]\n"
    "                           [--timeout 5s] [--log-level LEVEL]\n"
    "\n"
    "Fetches the cluster's admin kubeconfig from the Talos API (apid, gRPC with mutual TLS)\n"
    "of the control plane ADDR (\"10.0.4.101\" means port 50000, or \"host:port\"). The\n"
    "node's certificate is checked against the talosconfig's os CA; its client certificate\n"
    "and key authenticate us. Without --out the kubeconfig goes to stdout; with --out the\n"
    "file is written with mode 0600.\n"
    "\n"
    "  --talosconfig FILE  talosconfig (as `ironboot talosconfig` writes it); env TALOSCONFIG\n"
    "  --context NAME      its context to use (default: its current context)\n"
    "  --node ADDR         the control plane to ask\n"
    "  --out FILE          where to write the kubeconfig (mode 0600)\n"
    "  --timeout DURATION  deadline of the call, e.g. 5s or 500ms (default 5s)\n"
    "\n"
    "Exit status: 0 written, 1 the call or the file failed, 2 usage.\n";


}  // namespace

int KubeconfigCommand(Args args) {
  FlagSet flags("kubeconfig");
  flags.String("talosconfig", "", "talosconfig file", {"TALOSCONFIG"});
  flags.String("context", "", "talosconfig context");
  flags.String("node", "", "control plane address");
  flags.String("out", "", "output file (mode 0600)");
  flags.String("timeout", "5s", "deadline of the call");
  flags.String("log-level", "info", "log level");
  flags.Bool("help", "show this help");
  flags.Bool("h", "show this help");
  if (auto parsed = flags.Parse(args); !parsed) {
    std::fprintf(stderr, "ironboot %s\n\n%s", parsed.error().message.c_str(), kKubeconfigUsage);
    return 2;
  }
  if (flags.GetBool("help") || flags.GetBool("h")) {
    std::fputs(kKubeconfigUsage, stdout);
    return 0;
  }
  if (!flags.positional().empty()) {
    std::fprintf(stderr, "ironboot kubeconfig: unexpected argument \"%s\"\n\n%s",
                 flags.positional()[0].c_str(), kKubeconfigUsage);
    return 2;
  }
  if (!SetLogLevel(flags.Get("log-level"))) {
    std::fprintf(stderr, "ironboot kubeconfig: unknown log level \"%s\"\n",
                 flags.Get("log-level").c_str());
    return 2;
  }
  auto talosconfig = flags.GetOptional("talosconfig");
  auto node = flags.GetOptional("node");
  if (!talosconfig || !node) {
    std::fprintf(stderr, "ironboot kubeconfig: %s is required\n\n%s",
                 !talosconfig ? "--talosconfig FILE" : "--node ADDR", kKubeconfigUsage);
    return 2;
  }
  auto deadline = ParseDuration(flags.Get("timeout"));
  if (!deadline || deadline->count() <= 0) {
    std::fprintf(stderr,
                 "ironboot kubeconfig: --timeout \"%s\" is not a duration (want e.g. 5s or "
                 "500ms)\n",
                 flags.Get("timeout").c_str());
    return 2;
  }
  auto creds = talos::LoadTalosconfigCredentials(*talosconfig, flags.Get("context"));
  if (!creds) {
    std::fprintf(stderr, "ironboot kubeconfig: %s\n", creds.error().message.c_str());
    return 1;
  }
  talos::TalosApiOptions options;
  options.deadline = *deadline;
  auto client = talos::TalosApiClient::Create(std::move(*creds), options);
  if (!client) {
    std::fprintf(stderr, "ironboot kubeconfig: %s: %s\n", talosconfig->c_str(),
                 client.error().message.c_str());
    return 1;
  }
  auto kubeconfig = (*client)->Kubeconfig(*node);
  if (!kubeconfig) {
    std::fprintf(stderr, "ironboot kubeconfig: %s\n", kubeconfig.error().message.c_str());
    return 1;
  }
  auto out = flags.GetOptional("out");
  if (!out) {
    std::fwrite(kubeconfig->data(), 1, kubeconfig->size(), stdout);
    return 0;
  }
  if (auto w = WriteFileAtomically(*out, *kubeconfig, {.create_parents = false}); !w) {
    std::fprintf(stderr, "ironboot kubeconfig: %s\n", w.error().message.c_str());
    return 1;
  }
  Logger("kubeconfig")
      ->info("wrote kubeconfig out={} node={} bytes={}", *out, *node, kubeconfig->size());
  return 0;
}

}  // namespace ironboot::controller
