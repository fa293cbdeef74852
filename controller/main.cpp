// ironboot: a GitOps controller and boot server for bare-metal Talos clusters.
// main() only dispatches to a subcommand.

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "controller/commands.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(ironboot::controller::Args);
};

constexpr Command kCommands[] = {
    {"demo", "run everything on this machine: a repo, the server and a simulated fleet (--upgrade-to v1.12.0)",
     ironboot::controller::DemoCommand},
    {"serve", "run the boot server (Matchbox-compatible; GitOps with --repo)",
     ironboot::controller::ServeCommand},
    {"machineconfig", "patch a Talos machine config like talosctl machineconfig patch",
     ironboot::controller::MachineconfigCommand},
    {"validate", "check a cluster repo dir offline (for its CI)", ironboot::controller::ValidateCommand},
    {"render", "render a cluster repo dir to a Matchbox data dir", ironboot::controller::RenderCommand},
    {"plan", "show what a revision changes per machine (against a dir, a commit or a server)",
     ironboot::controller::PlanCommand},
    {"secrets", "generate a Talos secrets bundle (secrets gen --out FILE)", ironboot::controller::SecretsCommand},
    {"talosconfig", "write a talosconfig (os:admin client cert) from a secrets bundle", ironboot::controller::TalosconfigCommand},
    {"kubeconfig", "fetch the admin kubeconfig from a control plane's Talos API", ironboot::controller::KubeconfigCommand},
    {"fleet", "run a simulated Talos fleet that network-boots from a boot server", ironboot::controller::FleetCommand},
    {"status", "show a GitOps server's served revision, rollout and machines (GET /status)", ironboot::controller::StatusCommand},
};

void Usage(FILE* out) {
  std::fprintf(out,
               "ironboot: GitOps controller and boot server for bare-metal Talos clusters\n\n"
               "usage: ironboot <command> [flags]\n\ncommands:\n");
  for (const auto& c : kCommands) {
    std::fprintf(out, "  %-22s %s\n", c.name, c.summary);
  }
  std::fprintf(out, "\nRun 'ironboot <command> --help' for a command's flags.\n");
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that closes its socket mid-response (a PXE client power-cycled
  // during an initramfs download) must cost an EPIPE on that connection, not
  // the process: sendfile(2) cannot take MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    Usage(args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (args[0] == c.name) {
      return c.run(std::span<const std::string>(args).subspan(1));
    }
  }
  // Matchbox compatibility: `ironboot -address ...` with no subcommand is `serve`,
  // so an existing Matchbox unit works by changing only the binary path.
  if (!args[0].empty() && args[0][0] == '-') {
    return ironboot::controller::ServeCommand(args);
  }
  std::fprintf(stderr, "ironboot: unknown command \"%s\"\n\n", args[0].c_str());
  Usage(stderr);
  return 2;
}
