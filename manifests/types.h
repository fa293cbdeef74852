#pragma once
// manifests/: the cluster-repo format v1alpha1 as C++ values (documented in
// manifests/README.md). Load() fills these from a repo only after every
// field and cross-document rule passed, so code that reads them trusts them.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bootserver/model.h"
#include "manifests/diagnostics.h"
#include "manifests/values.h"
#include "talos/config_patch.h"

namespace ironboot::manifests {

inline constexpr char kApiVersion[] = "ironboot.dev/v1alpha1";

enum class Role { kControlPlane, kWorker };
// "controlplane" / "worker", Talos's machine.type words.
const char* RoleName(Role role);

// Where a document and its fields came from, for later diagnostics (render
// errors, upgrade checks). Field paths as in messages: "spec.talosVersion".
struct SourceInfo {
  Position document;
  std::map<std::string, Position> fields;

  Position At(const std::string& field) const {
    auto it = fields.find(field);
    return it == fields.end() ? document : it->second;
  }
};

// A patch a document references: the repo path (or "<file> spec.patches[i]"
// for inline patches) and its text.
using PatchRef = talos::Patch;

// Where the IANA time zone files live (TZif, as Debian's tzdata installs them).
inline constexpr char kZoneInfoDir[] = "/usr/share/zoneinfo";

// A weekly window, in a time zone's wall-clock time, inside which the rollout
// may start a new step (a step already running finishes). Evaluated by
// reconcilers/maintenance_window.h.
struct MaintenanceWindow {
  // Days the window starts on, 0 = Sunday .. 6 = Saturday; sorted, unique,
  // never empty after Load().
  std::vector<int> days = {0, 1, 2, 3, 4, 5, 6};
  // Minutes after local midnight. start_minute in [0, 1439]; end_minute in
  // [0, 1440] (1440: "24:00") and != start_minute. end_minute < start_minute:
  // the window spans midnight into the next day.
  int start_minute = 0;
  int end_minute = 0;
  std::string time_zone = "UTC";  // IANA name, a file under kZoneInfoDir

  bool SpansMidnight() const { return end_minute < start_minute; }
};

struct UpgradePolicy {
  std::string strategy = "pxe-reboot";  // or "talos-upgrade"
  int max_unavailable_controlplane = 1;
  int max_unavailable_worker = 1;
  // How long each health gate waits for a machine before the step fails.
  int64_t health_timeout_seconds = 900;
  bool paused = false;
  // Set: one worker goes first and must stay healthy this long before the
  // rest. `canary: true` means 600 (10m).
  std::optional<int64_t> canary_soak_seconds;
  // A machine that fails its gate is switched back to its previous release
  // and rebooted.
  bool rollback = false;
  // Unset: steps may start at any time.
  std::optional<MaintenanceWindow> maintenance_window;
};

struct Cluster {
  std::string name;
  std::string control_plane_endpoint;  // https://host:port
  TalosVersion talos_version;
  std::string kubernetes_version;  // empty: the base configs' own
  std::string boot_server_url;     // no trailing "/"
  std::optional<IpPrefix> subnet;
  std::string base_config_controlplane;  // repo paths
  std::string base_config_worker;
  std::vector<PatchRef> patches_all;
  std::vector<PatchRef> patches_controlplane;
  std::vector<PatchRef> patches_worker;
  std::vector<std::string> kernel_args;
  std::string install_disk;
  UpgradePolicy upgrade;
  SourceInfo source;
};

struct ReleaseAsset {
  std::string url;
  std::string sha512;         // lowercase hex; empty: look it up in sha512sum_url
  std::string sum_file_name;  // the name in sha512sum.txt (the URL's last segment)
};

struct TalosRelease {
  std::string name;
  TalosVersion version;
  std::string arch = "amd64";
  ReleaseAsset kernel;
  ReleaseAsset initramfs;
  std::string sha512sum_url;  // empty when both assets carry sha512
  std::string installer_image;
  SourceInfo source;
};

struct Machine {
  std::string name;  // also the hostname
  Role role = Role::kWorker;
  std::vector<std::string> macs;  // normalised: lowercase, colons; at least one
  std::string uuid;
  std::string serial;
  std::optional<IpPrefix> address;  // with prefix length (from the subnet if omitted)
  std::string interface;            // empty: the config's first interface, else eth0
  std::string install_disk;         // empty: the cluster's, else the base config's
  std::map<std::string, std::string> install_disk_selector;
  std::optional<TalosVersion> talos_version;  // pin (canary); empty: the cluster's
  std::string arch = "amd64";
  std::vector<std::string> kernel_args;
  std::vector<PatchRef> patches;
  std::map<std::string, std::string> labels;
  bool paused = false;
  SourceInfo source;

  // The version this machine should run.
  const TalosVersion& DesiredVersion(const Cluster& cluster) const {
    return talos_version ? *talos_version : cluster.talos_version;
  }
};

// Everything a valid repo declares. Machines sorted by name, releases by
// (version text, arch). `files` is the repo itself (base configs are read from
// it at render time).
struct DesiredState {
  std::optional<Cluster> cluster;  // absent only in a raw-Matchbox-only repo
  std::vector<TalosRelease> releases;
  std::vector<Machine> machines;
  // Raw Matchbox groups/*.json and profiles/*.json, as they are.
  std::vector<bootserver::Group> raw_groups;
  std::vector<bootserver::Profile> raw_profiles;
  std::map<std::string, std::string> files;
  Diagnostics warnings;

  const TalosRelease* FindRelease(const TalosVersion& version, const std::string& arch) const;
};

}  // namespace ironboot::manifests
