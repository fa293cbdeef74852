#pragma once
// controller/: `ironboot demo`, the embedded default. Everything on
// loopback, nothing from the network:
//   - a cluster repo made from examples/homelab (embedded in the binary),
//     its addresses rewritten from 10.0.4.x to 127.0.4.x, plus two workers,
//     committed to a local git repo;
//   - a secrets bundle generated natively (no base configs in the repo);
//   - stand-in kernels and initramfs for each release (fleet/sim_kernel.h)
//     with a sha512sum.txt, fetched through the same file:// download,
//     verify and cache path as real releases;
//   - `ironboot serve` on that repo and `ironboot fleet` (3 control planes,
//     2 workers) as child processes.

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"

namespace ironboot::controller {

struct EmbeddedFile {
  const char* path;  // relative to examples/homelab
  const char* text;
};
std::span<const EmbeddedFile> EmbeddedHomelab();

struct DemoOptions {
  std::filesystem::path dir;              // everything goes here (created)
  std::string address = "127.0.0.1:8080";  // the boot server / controller
  std::string fleet_status_address;       // host:port of the fleet's GET /fleet ("" off)
  std::string from_version = "v1.11.3";
  std::vector<std::string> extra_versions;  // releases declared besides from_version
  std::string health_timeout = "2m";
  std::vector<std::string> faults;  // passed to `ironboot fleet --fault`
  std::string reboot_delay = "2s";
  // The machines' /24 on loopback ("127.0.4": control planes .101-.103,
  // workers .111-.112); demos and tests running at once need different ones.
  std::string machine_net = "127.0.4";
};

// What PrepareDemo made: the repo and the two commands that run the demo.
struct DemoPlan {
  std::filesystem::path repo;     // git work tree (branch main)
  std::filesystem::path secrets;  // secrets bundle (mode 0600)
  std::vector<std::string> serve_args;  // after the binary: {"serve", ...}
  std::vector<std::string> fleet_args;  // {"fleet", ...}
  std::string cluster_file;       // repo path of the Cluster document ("cluster.yaml")
  size_t machines = 0;
};

// Writes the repo (committed), the bundle and the release assets into
// options.dir. Errors name the file or command that failed.
Result<DemoPlan> PrepareDemo(const DemoOptions& options);

// The demo repo's cluster.yaml with spec.talosVersion set to `version`,
// committed ("talos <version>"). Errors name the file or the git command.
Result<void> CommitTalosVersion(const DemoPlan& plan, const std::string& version);

// Runs `argv` (argv[0] looked up in PATH), waits; returns its exit status.
// Output goes to `log` when not empty, else is discarded.
Result<int> RunAndWait(const std::vector<std::string>& argv, const std::filesystem::path& log = {});

}  // namespace ironboot::controller
