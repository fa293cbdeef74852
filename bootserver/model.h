#pragma once
// bootserver/: the Matchbox data model the boot server serves: groups (which
// machine gets which profile) and profiles (what it boots). Plain values; the
// GitOps renderer produces the same types a Matchbox data dir loads into.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ironboot::bootserver {

// A Matchbox group: requests whose labels contain every selector pair get
// `profile`. Selector values for the key "mac" are normalised (lowercase,
// colons). An empty selector is the default group.
struct Group {
  std::string id;
  std::string name;
  std::string profile;
  std::map<std::string, std::string> selector;
  nlohmann::json metadata = nlohmann::json::object();
  std::string source;  // where it came from, for messages: "groups/cp1.json"

  bool operator==(const Group&) const = default;
};

// A Matchbox profile: the kernel, initrds and kernel args iPXE/GRUB boot.
struct Profile {
  std::string id;
  std::string name;
  std::string kernel;
  std::vector<std::string> initrd;
  std::vector<std::string> args;
  std::string generic_id;  // template under generic/, served at /generic
  std::string source;
  // ironboot (GitOps, strategy talos-upgrade): the machine is installed;
  // its iPXE script is `exit`, so the firmware boots the local disk.
  bool local_boot = false;

  bool operator==(const Profile&) const = default;
};

// Everything one published revision of the boot server serves. Built either
// from a Matchbox data dir or by manifests::Render; swapped in whole.
struct StoreContent {
  std::vector<Group> groups;
  std::vector<Profile> profiles;
  std::map<std::string, std::string> generic_templates;  // generic_id -> template text
  // ironboot additions (GitOps): machine configs by normalised MAC, and asset
  // URL paths (e.g. "talos/v1.11.3/amd64/vmlinuz", no leading slash) served from
  // verified files outside the assets dir.
  std::map<std::string, std::string> machine_configs;
  std::map<std::string, std::filesystem::path> extra_assets;
  // Each machine's static address by normalised MAC, without prefix
  // ("10.0.4.101"): /config is served to that address (bootserver/config_access.h).
  std::map<std::string, std::string> machine_addresses;
  std::string revision;  // e.g. "main@sha1:3f2a...", or "dir:/var/lib/matchbox"
};

}  // namespace ironboot::bootserver
