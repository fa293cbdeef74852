#pragma once
// manifests/: the BootPlan, what Render() makes of a DesiredState: every
// Matchbox group and profile, every machine config, and the release assets
// they need. A plain value; the boot reconciler publishes it whole
// (ToStoreContent) once its assets are verified.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bootserver/model.h"

namespace ironboot::manifests {

// One downloadable file of a release.
struct PlanAsset {
  std::string url;
  std::string sha512;         // lowercase hex; empty: take it from sha512sum_url
  std::string sha512sum_url;  // the release's sha512sum.txt (empty when sha512 is set)
  std::string sum_file_name;  // the file's name inside sha512sum.txt, e.g. "vmlinuz-amd64"
  std::string served_path;    // below /assets/, e.g. "talos/1.11.3/amd64/vmlinuz"

  bool operator==(const PlanAsset&) const = default;
};

// A Talos release in use by at least one machine.
struct PlanRelease {
  std::string version;  // "v1.11.3"
  std::string arch;     // "amd64"
  PlanAsset kernel;
  PlanAsset initramfs;
  std::string installer_image;

  bool operator==(const PlanRelease&) const = default;
};

struct MachineSummary {
  std::string name;
  std::string role;               // "controlplane" / "worker"
  std::vector<std::string> macs;  // normalised
  std::string address;            // "10.0.4.101/24" or empty
  std::string talos_version;      // the release it boots
  std::string arch;
  std::string profile;  // profile id
  bool paused = false;

  bool operator==(const MachineSummary&) const = default;
};

struct BootPlan {
  std::vector<bootserver::Group> groups;      // sorted by id
  std::vector<bootserver::Profile> profiles;  // sorted by id
  // Machine config by normalised MAC (every MAC of a machine maps to its config).
  std::map<std::string, std::string> machine_configs;
  std::vector<MachineSummary> machines;  // sorted by name
  std::vector<PlanRelease> releases;     // sorted by version, arch

  bool operator==(const BootPlan&) const = default;
};

// The boot server's view of `plan`. `verified_assets` maps a served path
// ("talos/1.11.3/amd64/vmlinuz") to the verified file on disk; those become
// StoreContent::extra_assets. Which machines to hold back when a release's
// assets are missing is the caller's decision, not this function's.
bootserver::StoreContent ToStoreContent(
    const BootPlan& plan, const std::map<std::string, std::filesystem::path>& verified_assets,
    const std::string& revision);

// `plan` as a Matchbox data dir: relative path -> bytes. groups/<id>.json,
// profiles/<id>.json, and configs/<machine>.yaml (one per machine). A site
// can copy these into /var/lib/matchbox and keep running Matchbox.
std::map<std::string, std::string> ToMatchboxFiles(const BootPlan& plan);

}  // namespace ironboot::manifests
