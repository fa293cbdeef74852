#include "manifests/render.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <unordered_map>

#include "manifests/matchbox_json.h"
#include "talos/config_patch.h"
#include "talos/strategic_merge.h"

namespace ironboot::manifests {

Result<std::string> RepoBaseConfigs::BaseConfig(const Cluster& cluster, Role role) const {
  const std::string& path =
      role == Role::kControlPlane ? cluster.base_config_controlplane : cluster.base_config_worker;
  auto it = state_.files.find(path);
  if (it == state_.files.end()) {
    return Fail(ErrorCode::kNotFound,
                "base config " + Quote(path) + " not found in the repository");
  }
  return it->second;
}

std::string KernelServedPath(const TalosRelease& release) {
  return "talos/" + release.version.Plain() + "/" + release.arch + "/vmlinuz";
}

std::string InitramfsServedPath(const TalosRelease& release) {
  return "talos/" + release.version.Plain() + "/" + release.arch + "/initramfs.xz";
}

namespace {

// iPXE expands this before the kernel sees it; Talos then fetches the config.
constexpr char kConfigQuery[] = "/config?mac=${mac:hexhyp}";
// "${mac:hexhyp}" (13 bytes) becomes "00-23-24-e7-29-40" (17 bytes).
constexpr size_t kMacExpansionGrowth = 4;

// A role's config after the base config and the cluster's all/role patches:
// the same for every machine of the role, so it is patched once.
struct RoleConfig {
  std::string yaml;
  // `yaml` parsed once; each machine patches a copy (parsing the emitted text,
  // not reusing the patched tree, keeps the output what re-parsing gives).
  Result<std::vector<talos::Value>> docs;
  // How the machine's address finds its interface when the Machine names
  // none: the first entry of machine.network.interfaces (the seed's
  // `interfaces[0]`), by name or by deviceSelector.
  std::string first_interface;
  nlohmann::ordered_json first_device_selector;  // null when none
  talos::Value first_device_selector_value;      // the same as a Value
};

// A JSON value as ParseYamlDocuments reads JSON text (strings and booleans
// only: what a device selector holds).
talos::Value SelectorValue(const nlohmann::ordered_json& j) {
  if (j.is_object()) {
    talos::Value v = talos::Value::Map();
    for (const auto& [key, value] : j.items()) {
      v.entries.push_back(talos::MapEntry{key, SelectorValue(value)});
    }
    return v;
  }
  if (j.is_boolean()) {
    talos::Value v;
    v.kind = talos::ValueKind::kBool;
    v.scalar = j.get<bool>() ? "true" : "false";
    return v;
  }
  return talos::Value::String(j.get<std::string>());
}

// Each distinct patch text parsed once; the same text is shared by many
// machines. Failed parses are not kept: they are parsed again with the
// patch's own source so that the message names it.
class PatchCache {
 public:
  Result<const talos::ParsedPatch*> Get(const talos::Patch& patch) {
    auto it = parsed_.find(patch.content);
    if (it == parsed_.end()) {
      auto parsed = talos::ParsePatch(patch);
      if (!parsed) {
        return std::unexpected(parsed.error());
      }
      it = parsed_.emplace(patch.content, std::move(*parsed)).first;
    }
    return &it->second;
  }

 private:
  std::unordered_map<std::string, talos::ParsedPatch> parsed_;
};

void AddEntry(talos::Value& map, std::string key, talos::Value value) {
  map.entries.push_back(talos::MapEntry{std::move(key), std::move(value)});
}

void FindFirstInterface(RoleConfig& rc) {
  try {
    for (const auto& doc : YAML::LoadAll(rc.yaml)) {
      if (!doc.IsMap() || !doc["machine"].IsMap()) {
        continue;
      }
      const YAML::Node ifaces = doc["machine"]["network"]["interfaces"];
      if (ifaces.IsSequence() && ifaces.size() > 0 && ifaces[0].IsMap()) {
        if (ifaces[0]["interface"].IsScalar()) {
          rc.first_interface = ifaces[0]["interface"].Scalar();
        } else if (ifaces[0]["deviceSelector"].IsMap()) {
          // Selector values are strings or booleans (physical: true); kept as text
          // except booleans, which Talos decodes strictly.
          rc.first_device_selector = nlohmann::ordered_json::object();
          for (const auto& kv : ifaces[0]["deviceSelector"]) {
            const std::string& v = kv.second.Scalar();
            if (v == "true" || v == "false") {
              rc.first_device_selector[kv.first.Scalar()] = v == "true";
            } else {
              rc.first_device_selector[kv.first.Scalar()] = v;
            }
          }
        }
      }
      return;
    }
  } catch (const YAML::Exception&) {
    // ApplyPatches produced it, so it parses; if not, the default interface stands.
  }
}

// The per-machine values as a strategic merge patch, applied last. Built as
// the tree ParseYamlDocuments makes of the JSON text
// {"machine":{"network":...,"install":...},"cluster":{...}}.
talos::Value MachineValuesPatch(const Cluster& cluster, const Machine& m,
                                const TalosRelease& release, const RoleConfig& rc) {
  using talos::Value;
  Value network = Value::Map();
  AddEntry(network, "hostname", Value::String(m.name));
  if (m.address) {
    Value iface = Value::Map();
    if (!m.interface.empty()) {
      AddEntry(iface, "interface", Value::String(m.interface));
    } else if (!rc.first_interface.empty()) {
      AddEntry(iface, "interface", Value::String(rc.first_interface));
    } else if (!rc.first_device_selector.is_null()) {
      AddEntry(iface, "deviceSelector", rc.first_device_selector_value);
    } else {
      AddEntry(iface, "interface", Value::String("eth0"));
    }
    Value addresses = Value::Sequence();
    addresses.items.push_back(Value::String(m.address->ToString()));
    AddEntry(iface, "addresses", std::move(addresses));
    Value interfaces = Value::Sequence();
    interfaces.items.push_back(std::move(iface));
    AddEntry(network, "interfaces", std::move(interfaces));
  }
  Value install = Value::Map();
  const std::string& disk = !m.install_disk.empty() ? m.install_disk : cluster.install_disk;
  if (!m.install_disk_selector.empty()) {
    Value selector = Value::Map();
    for (const auto& [key, value] : m.install_disk_selector) {
      AddEntry(selector, key, Value::String(value));
    }
    AddEntry(install, "diskSelector", std::move(selector));
  } else if (!disk.empty()) {
    AddEntry(install, "disk", Value::String(disk));
  }
  AddEntry(install, "image", Value::String(release.installer_image));
  Value machine = Value::Map();
  AddEntry(machine, "network", std::move(network));
  AddEntry(machine, "install", std::move(install));
  Value control_plane = Value::Map();
  AddEntry(control_plane, "endpoint", Value::String(cluster.control_plane_endpoint));
  Value cluster_value = Value::Map();
  AddEntry(cluster_value, "clusterName", Value::String(cluster.name));
  AddEntry(cluster_value, "controlPlane", std::move(control_plane));
  Value patch = Value::Map();
  AddEntry(patch, "machine", std::move(machine));
  AddEntry(patch, "cluster", std::move(cluster_value));
  return patch;
}

// The machine's config: the role's parsed config, the machine's patches, then
// its values. Same result and messages as talos::ApplyPatches on the role's
// text with those patches.
Result<std::string> MachineConfig(const RoleConfig& rc, const Machine& m, talos::Value values,
                                  PatchCache& cache) {
  if (!rc.docs) {
    return std::unexpected(rc.docs.error());
  }
  std::vector<talos::Value> docs = *rc.docs;
  for (const auto& patch : m.patches) {
    auto parsed = cache.Get(patch);
    if (!parsed) {
      return std::unexpected(parsed.error());
    }
    if (auto r = talos::ApplyParsedPatch(docs, **parsed, patch.source); !r) {
      return std::unexpected(r.error());
    }
  }
  std::vector<talos::Value> values_docs;
  values_docs.push_back(std::move(values));
  if (auto r = talos::StrategicMerge(docs, std::move(values_docs),
                                     "machine " + m.name + " values (hostname, address, install)");
      !r) {
    return std::unexpected(r.error());
  }
  return talos::EmitYaml(docs);
}

std::vector<std::string> KernelArgs(const Cluster& cluster, const Machine& m) {
  std::vector<std::string> args;
  std::set<std::string> seen;
  auto add = [&](const std::string& a) {
    if (seen.insert(a).second) {
      args.push_back(a);
    }
  };
  for (const char* a : kRequiredKernelArgs) {
    add(a);
  }
  for (const auto& a : cluster.kernel_args) {
    add(a);
  }
  for (const auto& a : m.kernel_args) {
    add(a);
  }
  add("talos.config=" + cluster.boot_server_url + kConfigQuery);
  return args;
}

PlanAsset ToPlanAsset(const ReleaseAsset& a, const TalosRelease& r, std::string served_path) {
  return PlanAsset{a.url, a.sha512, a.sha512.empty() ? r.sha512sum_url : std::string(),
                   a.sum_file_name, std::move(served_path)};
}

}  // namespace

std::expected<BootPlan, Diagnostics> Render(const DesiredState& state) {
  return Render(state, RepoBaseConfigs(state));
}

std::expected<BootPlan, Diagnostics> Render(const DesiredState& state,
                                            const BaseConfigSource& base_configs) {
  return Render(state, base_configs, nullptr);
}

std::expected<BootPlan, Diagnostics> Render(const DesiredState& state,
                                            const BaseConfigSource& base_configs, RenderMemo* memo) {
  Diagnostics diags;
  BootPlan plan;
  std::set<std::pair<std::string, std::string>> releases_in_use;
  if (state.cluster) {
    const Cluster& cluster = *state.cluster;
    std::map<Role, std::optional<RoleConfig>> role_configs;
    PatchCache patch_cache;
    auto role_config = [&](Role role) -> const RoleConfig* {
      auto it = role_configs.find(role);
      if (it != role_configs.end()) {
        return it->second ? &*it->second : nullptr;
      }
      auto& slot = role_configs[role];
      const std::string field = std::string("spec.baseConfigs.") + RoleName(role);
      auto base = base_configs.BaseConfig(cluster, role);
      if (!base) {
        diags.Error(cluster.source.At(field), field, base.error().message);
        return nullptr;
      }
      std::vector<talos::Patch> patches = cluster.patches_all;
      const auto& role_patches =
          role == Role::kControlPlane ? cluster.patches_controlplane : cluster.patches_worker;
      patches.insert(patches.end(), role_patches.begin(), role_patches.end());
      auto patched = talos::ApplyPatches(*base, patches);
      if (!patched) {
        diags.Error(cluster.source.At("spec.patches"), "spec.patches",
                    std::string("cannot patch the ") + RoleName(role) +
                        " base config: " + patched.error().message);
        return nullptr;
      }
      slot = RoleConfig{std::move(*patched), {}, "", nullptr, {}};
      slot->docs = talos::ParseYamlDocuments(slot->yaml, "machine config");
      FindFirstInterface(*slot);
      if (!slot->first_device_selector.is_null()) {
        slot->first_device_selector_value = SelectorValue(slot->first_device_selector);
      }
      return &*slot;
    };

    for (const auto& m : state.machines) {
      const TalosVersion& version = m.DesiredVersion(cluster);
      const TalosRelease* release = state.FindRelease(version, m.arch);
      if (!release) {  // Load() refuses this; kept for callers that build states by hand
        diags.Error(m.source.document, "spec.talosVersion",
                    "no TalosRelease for " + version.text + "/" + m.arch);
        continue;
      }
      releases_in_use.insert({release->version.text, release->arch});

      bootserver::Profile profile;
      profile.id = m.name;
      profile.name = "Talos " + version.text + " " + RoleName(m.role) + " " + m.name;
      profile.kernel = "/assets/" + KernelServedPath(*release);
      profile.initrd = {"/assets/" + InitramfsServedPath(*release)};
      profile.args = KernelArgs(cluster, m);
      profile.source = m.source.document.file;
      size_t length = profile.args.size() - 1 + kMacExpansionGrowth;
      for (const auto& a : profile.args) {
        length += a.size();
      }
      if (length > kMaxKernelCommandLine) {
        diags.Error(m.source.At("spec.kernelArgs"), "spec.kernelArgs",
                    "machine " + Quote(m.name) + ": kernel command line is " +
                        std::to_string(length) + " bytes (want at most " +
                        std::to_string(kMaxKernelCommandLine) +
                        "; cluster and machine kernelArgs add up)");
      }

      const RoleConfig* rc = role_config(m.role);
      std::string memo_key;
      const std::string* memoized = nullptr;
      if (memo != nullptr) {
        memo_key = m.name + '\n' + RoleName(m.role) + '\n' + release->version.text + '\n' + m.arch;
        auto it = memo->configs.find(memo_key);
        memoized = it == memo->configs.end() ? nullptr : &it->second;
      }
      if (rc) {
        Result<std::string> config =
            memoized != nullptr
                ? Result<std::string>(*memoized)
                : MachineConfig(*rc, m, MachineValuesPatch(cluster, m, *release, *rc), patch_cache);
        if (config && memo != nullptr && memoized == nullptr) {
          memo->configs[memo_key] = *config;
        }
        if (!config) {
          diags.Error(m.source.At("spec.patches"), "spec.patches",
                      "machine " + Quote(m.name) + ": " + config.error().message);
        } else {
          for (size_t i = 0; i + 1 < m.macs.size(); ++i) {
            plan.machine_configs[m.macs[i]] = *config;
          }
          if (!m.macs.empty()) {
            plan.machine_configs[m.macs.back()] = std::move(*config);
          }
        }
      }

      for (size_t i = 0; i < m.macs.size(); ++i) {
        bootserver::Group g;
        g.id = i == 0 ? m.name : m.name + ".mac" + std::to_string(i + 1);
        g.name = m.name + " (" + RoleName(m.role) + ", " + version.text + ")";
        g.profile = profile.id;
        g.selector["mac"] = m.macs[i];
        g.metadata = nlohmann::json{{"machine", m.name}, {"role", RoleName(m.role)}};
        g.source = m.source.document.file;
        plan.groups.push_back(std::move(g));
      }
      plan.machines.push_back(MachineSummary{m.name, RoleName(m.role), m.macs,
                                             m.address ? m.address->ToString() : std::string(),
                                             version.text, m.arch, profile.id, m.paused});
      plan.profiles.push_back(std::move(profile));
    }
  }

  // Raw Matchbox files ride along; an id clash would make one of them unreachable.
  std::map<std::string, std::string> group_ids;
  for (const auto& g : plan.groups) {
    group_ids[g.id] = g.source;
  }
  for (const auto& g : state.raw_groups) {
    auto [it, fresh] = group_ids.emplace(g.id, g.source);
    if (!fresh) {
      diags.Error(Position{g.source, 0, 0}, "id",
                  "group id " + Quote(g.id) + " is also used by " + it->second);
      continue;
    }
    plan.groups.push_back(g);
  }
  std::map<std::string, std::string> profile_ids;
  for (const auto& p : plan.profiles) {
    profile_ids[p.id] = p.source;
  }
  for (const auto& p : state.raw_profiles) {
    auto [it, fresh] = profile_ids.emplace(p.id, p.source);
    if (!fresh) {
      diags.Error(Position{p.source, 0, 0}, "id",
                  "profile id " + Quote(p.id) + " is also used by " + it->second);
      continue;
    }
    plan.profiles.push_back(p);
  }
  if (diags.HasErrors()) {
    return std::unexpected(diags);
  }

  std::sort(plan.groups.begin(), plan.groups.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  std::sort(plan.profiles.begin(), plan.profiles.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const auto& r : state.releases) {
    if (!releases_in_use.contains({r.version.text, r.arch})) {
      continue;
    }
    plan.releases.push_back(
        PlanRelease{r.version.text, r.arch, ToPlanAsset(r.kernel, r, KernelServedPath(r)),
                    ToPlanAsset(r.initramfs, r, InitramfsServedPath(r)), r.installer_image});
  }
  return plan;
}

bootserver::StoreContent ToStoreContent(
    const BootPlan& plan, const std::map<std::string, std::filesystem::path>& verified_assets,
    const std::string& revision) {
  bootserver::StoreContent content;
  content.groups = plan.groups;
  content.profiles = plan.profiles;
  content.machine_configs = plan.machine_configs;
  content.extra_assets = verified_assets;
  for (const auto& m : plan.machines) {
    if (m.address.empty()) {
      continue;
    }
    for (const auto& mac : m.macs) {
      content.machine_addresses[mac] = m.address.substr(0, m.address.find('/'));
    }
  }
  content.revision = revision;
  return content;
}

std::map<std::string, std::string> ToMatchboxFiles(const BootPlan& plan) {
  std::map<std::string, std::string> files;
  std::map<std::string, const MachineSummary*> machine_by_profile;
  for (const auto& m : plan.machines) {
    machine_by_profile[m.profile] = &m;
  }
  for (const auto& g : plan.groups) {
    files["groups/" + g.id + ".json"] = GroupToJson(g);
  }
  for (auto p : plan.profiles) {
    auto it = machine_by_profile.find(p.id);
    if (it != machine_by_profile.end() && !it->second->macs.empty()) {
      // Matchbox has no /config; it serves the same bytes as a generic
      // template at /generic?mac=..., selected by the same group.
      for (auto& a : p.args) {
        if (a.starts_with("talos.config=")) {
          auto at = a.rfind(kConfigQuery);
          if (at != std::string::npos) {
            a = a.substr(0, at) + "/generic?mac=${mac:hexhyp}";
          }
        }
      }
      p.generic_id = p.id + ".yaml";
      auto config = plan.machine_configs.find(it->second->macs.front());
      if (config != plan.machine_configs.end()) {
        files["generic/" + p.generic_id] = config->second;
      }
    }
    files["profiles/" + p.id + ".json"] = ProfileToJson(p);
  }
  return files;
}

}  // namespace ironboot::manifests
