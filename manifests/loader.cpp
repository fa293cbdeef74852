#include "manifests/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

#include "manifests/matchbox_json.h"

namespace ironboot::manifests {

const char* RoleName(Role role) {
  return role == Role::kControlPlane ? "controlplane" : "worker";
}

const TalosRelease* DesiredState::FindRelease(const TalosVersion& version,
                                              const std::string& arch) const {
  for (const auto& r : releases) {
    if (r.version.text == version.text && r.arch == arch) {
      return &r;
    }
  }
  return nullptr;
}

std::map<std::string, std::string> CurrentVersions(const DesiredState& state) {
  std::map<std::string, std::string> out;
  if (!state.cluster) {
    return out;
  }
  for (const auto& m : state.machines) {
    out[m.name] = m.DesiredVersion(*state.cluster).text;
  }
  return out;
}

namespace {

const char* KindOf(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "nothing";
  }
}

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) {
      out += sep;
    }
    out += i;
  }
  return out;
}

// At most `n` items, then "and N more".
std::string JoinFirst(const std::vector<std::string>& items, size_t n) {
  if (items.size() <= n) {
    return Join(items, ", ");
  }
  std::vector<std::string> head(items.begin(), items.begin() + n);
  return Join(head, ", ") + " and " + std::to_string(items.size() - n) + " more";
}

// Decodes one document, recording diagnostics and field positions.
class DocReader {
 public:
  DocReader(const std::string& file, Diagnostics& diags, SourceInfo& source)
      : file_(file), diags_(diags), source_(source) {}

  Position Pos(const YAML::Node& n) const {
    if (!n.IsDefined()) {
      return source_.document;
    }
    auto m = n.Mark();
    if (m.is_null()) {
      return source_.document;
    }
    return Position{file_, m.line + 1, m.column + 1};
  }

  void Error(const YAML::Node& at, const std::string& field, std::string message) {
    diags_.Error(Pos(at), field, std::move(message));
  }
  void ErrorAt(Position at, const std::string& field, std::string message) {
    diags_.Error(std::move(at), field, std::move(message));
  }

  // True if `n` is a map; else an error naming `path`.
  bool ExpectMap(const YAML::Node& n, const std::string& path) {
    if (n.IsMap()) {
      return true;
    }
    Error(n, path, std::string("want a map, got ") + KindOf(n));
    return false;
  }

  // Unknown keys are errors naming the nearest valid field.
  void CheckKeys(const YAML::Node& map, const std::string& path,
                 const std::vector<std::string>& allowed) {
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string("?");
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) {
        continue;
      }
      std::string field = path.empty() ? key : path + "." + key;
      std::string near = NearestWord(key, allowed);
      std::string msg = "unknown field " + Quote(key);
      if (!near.empty()) {
        msg += " (did you mean " + Quote(near) + "?)";
      } else {
        msg += " (valid fields: " + Join(allowed, ", ") + ")";
      }
      Error(it->first, field, msg);
    }
  }

  static std::string Sub(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  // A scalar field; records its position. nullopt if absent or not a scalar.
  std::optional<std::string> Str(const YAML::Node& map, const std::string& key,
                                 const std::string& path, bool required) {
    const std::string field = Sub(path, key);
    const YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) {
      if (required) {
        Error(map, field, "required field is missing");
      }
      return std::nullopt;
    }
    source_.fields[field] = Pos(n);
    if (!n.IsScalar()) {
      Error(n, field, std::string("want a string, got ") + KindOf(n));
      return std::nullopt;
    }
    if (n.Scalar().empty() && required) {
      Error(n, field, "must not be empty");
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<bool> Bool(const YAML::Node& map, const std::string& key, const std::string& path) {
    auto s = Str(map, key, path, false);
    if (!s) {
      return std::nullopt;
    }
    if (*s == "true") {
      return true;
    }
    if (*s == "false") {
      return false;
    }
    Error(map[key], Sub(path, key), Quote(*s) + " is not a boolean (want true or false)");
    return std::nullopt;
  }

  std::optional<int> Int(const YAML::Node& map, const std::string& key, const std::string& path,
                         int min) {
    auto s = Str(map, key, path, false);
    if (!s) {
      return std::nullopt;
    }
    try {
      size_t used = 0;
      int v = std::stoi(*s, &used);
      if (used == s->size() && v >= min) {
        return v;
      }
    } catch (const std::exception&) {
    }
    Error(map[key], Sub(path, key),
          Quote(*s) + " is not a valid number (want an integer >= " + std::to_string(min) + ")");
    return std::nullopt;
  }

  // A list of strings; a single scalar is not accepted (lists stay lists).
  std::vector<std::pair<std::string, YAML::Node>> StrList(const YAML::Node& map,
                                                          const std::string& key,
                                                          const std::string& path) {
    std::vector<std::pair<std::string, YAML::Node>> out;
    const std::string field = Sub(path, key);
    const YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) {
      return out;
    }
    source_.fields[field] = Pos(n);
    if (!n.IsSequence()) {
      Error(n, field, std::string("want a list of strings, got ") + KindOf(n));
      return out;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node item = n[i];
      std::string item_field = field + "[" + std::to_string(i) + "]";
      if (!item.IsScalar()) {
        Error(item, item_field, std::string("want a string, got ") + KindOf(item));
        continue;
      }
      source_.fields[item_field] = Pos(item);
      out.emplace_back(item.Scalar(), item);
    }
    return out;
  }

  std::map<std::string, std::string> StrMap(const YAML::Node& map, const std::string& key,
                                            const std::string& path) {
    std::map<std::string, std::string> out;
    const std::string field = Sub(path, key);
    const YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) {
      return out;
    }
    if (!ExpectMap(n, field)) {
      return out;
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->second.IsScalar()) {
        Error(it->second, field + "." + it->first.Scalar(),
              std::string("want a string, got ") + KindOf(it->second));
        continue;
      }
      out[it->first.Scalar()] = it->second.Scalar();
    }
    return out;
  }

  const std::string& file() const { return file_; }
  SourceInfo& source() { return source_; }

 private:
  const std::string& file_;
  Diagnostics& diags_;
  SourceInfo& source_;
};

class Loader {
 public:
  Loader(const RepoFiles& files, const LoadOptions& options) : files_(files), options_(options) {}

  std::expected<DesiredState, Diagnostics> Run() {
    for (const auto& [path, content] : files_) {
      if (path.ends_with(".yaml") || path.ends_with(".yml")) {
        LoadYamlFile(path, content);
      } else if (path.ends_with(".json") &&
                 (IsDirectChild(path, "groups/") || IsDirectChild(path, "profiles/"))) {
        LoadMatchboxFile(path, content);
      }
    }
    CrossChecks();
    if (diags_.HasErrors()) {
      return std::unexpected(diags_);
    }
    std::sort(state_.machines.begin(), state_.machines.end(),
              [](const Machine& a, const Machine& b) { return a.name < b.name; });
    std::sort(state_.releases.begin(), state_.releases.end(),
              [](const TalosRelease& a, const TalosRelease& b) {
                return std::tie(a.version.text, a.arch) < std::tie(b.version.text, b.arch);
              });
    state_.files = files_;
    state_.warnings = diags_;
    return std::move(state_);
  }

 private:
  static bool IsDirectChild(const std::string& path, const std::string& dir) {
    return path.starts_with(dir) && path.find('/', dir.size()) == std::string::npos;
  }

  void LoadMatchboxFile(const std::string& path, const std::string& content) {
    if (path.starts_with("groups/")) {
      auto g = ParseMatchboxGroup(path, content);
      if (g) {
        state_.raw_groups.push_back(std::move(*g));
      } else {
        diags_.Add(g.error());
      }
    } else {
      auto p = ParseMatchboxProfile(path, content);
      if (p) {
        state_.raw_profiles.push_back(std::move(*p));
      } else {
        diags_.Add(p.error());
      }
    }
  }

  void LoadYamlFile(const std::string& path, const std::string& content) {
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(content);
    } catch (const YAML::Exception& e) {
      Position pos{path, e.mark.is_null() ? 0 : e.mark.line + 1,
                   e.mark.is_null() ? 0 : e.mark.column + 1};
      diags_.Error(pos, "", "YAML syntax error: " + e.msg);
      return;
    }
    for (const auto& doc : docs) {
      if (!doc.IsMap()) {
        continue;
      }
      const YAML::Node api = doc["apiVersion"];
      if (!api.IsDefined() || !api.IsScalar() || !api.Scalar().starts_with("ironboot.dev/")) {
        continue;  // a patch, a base config or someone else's file
      }
      try {
        LoadDocument(path, doc);
      } catch (const YAML::Exception& e) {
        // A shape the checks above did not foresee: report it, never crash.
        auto m = doc.Mark();
        diags_.Error(Position{path, m.line + 1, m.column + 1}, "",
                     std::string("cannot read this document: ") + e.what());
      }
    }
  }

  void LoadDocument(const std::string& path, const YAML::Node& doc) {
    SourceInfo source;
    auto mark = doc.Mark();
    source.document = Position{path, mark.line + 1, mark.column + 1};
    DocReader r(path, diags_, source);
    r.CheckKeys(doc, "", {"apiVersion", "kind", "metadata", "spec"});
    const YAML::Node api = doc["apiVersion"];
    if (api.Scalar() != kApiVersion) {
      r.Error(api, "apiVersion",
              Quote(api.Scalar()) + " is not supported (want " + kApiVersion + ")");
      return;
    }
    auto kind = r.Str(doc, "kind", "", true);
    if (!kind) {
      return;
    }
    static const std::vector<std::string> kKinds = {"Cluster", "TalosRelease", "Machine"};
    if (std::find(kKinds.begin(), kKinds.end(), *kind) == kKinds.end()) {
      std::string near = NearestWord(*kind, kKinds);
      r.Error(doc["kind"], "kind",
              Quote(*kind) + " is not a kind of " + kApiVersion +
                  (near.empty() ? " (want Cluster, TalosRelease or Machine)"
                                : " (did you mean " + Quote(near) + "?)"));
      return;
    }
    const YAML::Node metadata = doc["metadata"];
    std::string name;
    std::map<std::string, std::string> labels;
    if (!metadata.IsDefined()) {
      r.Error(doc, "metadata.name", "required field is missing");
    } else if (r.ExpectMap(metadata, "metadata")) {
      r.CheckKeys(metadata, "metadata", {"name", "labels", "annotations"});
      name = r.Str(metadata, "name", "metadata", true).value_or("");
      labels = r.StrMap(metadata, "labels", "metadata");
      r.StrMap(metadata, "annotations", "metadata");
    }
    const YAML::Node spec = doc["spec"];
    if (!spec.IsDefined()) {
      r.Error(doc, "spec", "required field is missing");
      return;
    }
    if (!r.ExpectMap(spec, "spec")) {
      return;
    }
    if (*kind == "Cluster") {
      LoadCluster(r, name, spec);
    } else if (*kind == "TalosRelease") {
      LoadRelease(r, name, spec);
    } else {
      LoadMachine(r, name, labels, spec);
    }
  }

  // Resolves `ref` (relative to the referencing file's directory; a leading
  // "/" means the repo root) to a repo path; errors name the field.
  std::optional<std::string> ResolveFile(DocReader& r, const YAML::Node& at,
                                         const std::string& field, const std::string& ref) {
    namespace fs = std::filesystem;
    fs::path p =
        ref.starts_with("/") ? fs::path(ref.substr(1)) : fs::path(r.file()).parent_path() / ref;
    std::string normal = p.lexically_normal().generic_string();
    if (normal.empty() || normal.starts_with("..") || normal.starts_with("/")) {
      r.Error(at, field, Quote(ref) + " is outside the repository");
      return std::nullopt;
    }
    if (!files_.contains(normal)) {
      r.Error(
          at, field,
          "file " + Quote(ref) + " not found (looked for " + Quote(normal) + " in the repository)");
      return std::nullopt;
    }
    return normal;
  }

  std::vector<PatchRef> Patches(DocReader& r, const YAML::Node& map, const std::string& key,
                                const std::string& path) {
    std::vector<PatchRef> out;
    const std::string field = DocReader::Sub(path, key);
    const YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) {
      return out;
    }
    r.source().fields[field] = r.Pos(n);
    if (!n.IsSequence()) {
      r.Error(n, field,
              std::string("want a list of patch files or inline patches, got ") + KindOf(n));
      return out;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node item = n[i];
      std::string item_field = field + "[" + std::to_string(i) + "]";
      if (item.IsScalar()) {
        auto file = ResolveFile(r, item, item_field, item.Scalar());
        if (file) {
          out.push_back(PatchRef{*file, files_.at(*file)});
        }
      } else if (item.IsMap()) {
        YAML::Emitter e;
        e << item;
        out.push_back(PatchRef{r.file() + " " + item_field, std::string(e.c_str()) + "\n"});
      } else {
        r.Error(
            item, item_field,
            std::string("want a patch file path or an inline patch (a map), got ") + KindOf(item));
      }
    }
    return out;
  }

  std::optional<TalosVersion> Version(DocReader& r, const YAML::Node& map, const std::string& key,
                                      const std::string& path, bool required) {
    auto s = r.Str(map, key, path, required);
    if (!s) {
      return std::nullopt;
    }
    auto v = ParseTalosVersion(*s);
    if (!v) {
      r.Error(map[key], DocReader::Sub(path, key),
              Quote(*s) + " is not " + v.error().what + " (" + v.error().reason + ")");
      return std::nullopt;
    }
    return *v;
  }

  void LoadCluster(DocReader& r, const std::string& name, const YAML::Node& spec) {
    Cluster c;
    c.name = name;
    r.CheckKeys(spec, "spec",
                {"controlPlaneEndpoint", "talosVersion", "kubernetesVersion", "bootServerURL",
                 "subnet", "baseConfigs", "patches", "kernelArgs", "installDisk", "upgrade"});
    if (auto s = r.Str(spec, "controlPlaneEndpoint", "spec", true)) {
      auto url = ParseHttpUrl(*s, true);
      if (url) {
        c.control_plane_endpoint = *url;
      } else {
        r.Error(spec["controlPlaneEndpoint"], "spec.controlPlaneEndpoint",
                Quote(*s) + " is not a URL (want https://host:port, e.g. https://10.0.4.100:6443)");
      }
    }
    if (auto v = Version(r, spec, "talosVersion", "spec", true)) {
      c.talos_version = *v;
    }
    if (auto s = r.Str(spec, "kubernetesVersion", "spec", false)) {
      auto v = ParseKubernetesVersion(*s);
      if (v) {
        c.kubernetes_version = *v;
      } else {
        r.Error(spec["kubernetesVersion"], "spec.kubernetesVersion",
                Quote(*s) + " is not " + v.error().what + " (" + v.error().reason + ")");
      }
    }
    if (auto s = r.Str(spec, "bootServerURL", "spec", true)) {
      auto url = ParseHttpUrl(*s);
      if (url) {
        c.boot_server_url = *url;
      } else {
        r.Error(spec["bootServerURL"], "spec.bootServerURL",
                Quote(*s) + " is not a URL (" + url.error().reason + ")");
      }
    }
    if (auto s = r.Str(spec, "subnet", "spec", false)) {
      auto p = ParseIpPrefix(*s, true);
      if (p) {
        c.subnet = *p;
      } else {
        r.Error(spec["subnet"], "spec.subnet",
                Quote(*s) + " is not a subnet (want CIDR, e.g. 10.0.4.0/24)");
      }
    }
    c.base_config_controlplane = "controlplane.yaml";
    c.base_config_worker = "worker.yaml";
    base_config_refs_.clear();
    const YAML::Node base = spec["baseConfigs"];
    if (base.IsDefined() && r.ExpectMap(base, "spec.baseConfigs")) {
      r.CheckKeys(base, "spec.baseConfigs", {"controlplane", "worker"});
      for (const char* role : {"controlplane", "worker"}) {
        if (auto s = r.Str(base, role, "spec.baseConfigs", false)) {
          base_config_refs_[role] = *s;
        }
      }
    }
    // Resolved later, only for roles in use (a repo without workers needs no worker.yaml).
    for (const char* role : {"controlplane", "worker"}) {
      std::string ref =
          base_config_refs_.contains(role) ? base_config_refs_[role] : std::string(role) + ".yaml";
      namespace fs = std::filesystem;
      fs::path p =
          ref.starts_with("/") ? fs::path(ref.substr(1)) : fs::path(r.file()).parent_path() / ref;
      (std::string(role) == "controlplane" ? c.base_config_controlplane : c.base_config_worker) =
          p.lexically_normal().generic_string();
    }
    const YAML::Node patches = spec["patches"];
    if (patches.IsDefined()) {
      r.source().fields["spec.patches"] = r.Pos(patches);
    }
    if (patches.IsDefined() && r.ExpectMap(patches, "spec.patches")) {
      r.CheckKeys(patches, "spec.patches", {"all", "controlplane", "worker"});
      c.patches_all = Patches(r, patches, "all", "spec.patches");
      c.patches_controlplane = Patches(r, patches, "controlplane", "spec.patches");
      c.patches_worker = Patches(r, patches, "worker", "spec.patches");
    }
    c.kernel_args = KernelArgs(r, spec, "spec");
    c.install_disk = r.Str(spec, "installDisk", "spec", false).value_or("");
    const YAML::Node upgrade = spec["upgrade"];
    if (upgrade.IsDefined() && r.ExpectMap(upgrade, "spec.upgrade")) {
      LoadUpgradePolicy(r, upgrade, c.upgrade);
    }
    c.source = r.source();
    if (state_.cluster) {
      const auto& first = state_.cluster->source.document;
      r.ErrorAt(c.source.document, "kind",
                "a second Cluster " + Quote(name) + " (a repo describes one cluster; the first, " +
                    Quote(state_.cluster->name) + ", is at " + first.file + ":" +
                    std::to_string(first.line) + ")");
      return;
    }
    state_.cluster = std::move(c);
  }

  // spec.upgrade (a map): the rolling-upgrade policy.
  void LoadUpgradePolicy(DocReader& r, const YAML::Node& upgrade, UpgradePolicy& out) {
    r.CheckKeys(upgrade, "spec.upgrade",
                {"strategy", "maxUnavailable", "healthTimeout", "paused", "canary", "rollback",
                 "maintenanceWindow"});
    if (auto s = r.Str(upgrade, "strategy", "spec.upgrade", false)) {
      if (*s == "pxe-reboot" || *s == "talos-upgrade") {
        out.strategy = *s;
      } else {
        r.Error(upgrade["strategy"], "spec.upgrade.strategy",
                Quote(*s) + " is not a strategy (want pxe-reboot or talos-upgrade)");
      }
    }
    const YAML::Node mu = upgrade["maxUnavailable"];
    if (mu.IsDefined() && r.ExpectMap(mu, "spec.upgrade.maxUnavailable")) {
      r.CheckKeys(mu, "spec.upgrade.maxUnavailable", {"controlplane", "worker"});
      if (auto v = r.Int(mu, "controlplane", "spec.upgrade.maxUnavailable", 1)) {
        if (*v != 1) {
          r.Error(mu["controlplane"], "spec.upgrade.maxUnavailable.controlplane",
                  Quote(std::to_string(*v)) +
                      " is not allowed (want 1: control planes go one by one to keep etcd quorum)");
        }
      }
      out.max_unavailable_worker =
          r.Int(mu, "worker", "spec.upgrade.maxUnavailable", 1).value_or(1);
    }
    if (auto s = r.Str(upgrade, "healthTimeout", "spec.upgrade", false)) {
      auto d = ParseDuration(*s);
      if (d && *d > 0) {
        out.health_timeout_seconds = *d;
      } else {
        r.Error(upgrade["healthTimeout"], "spec.upgrade.healthTimeout",
                Quote(*s) + " is not a duration (want e.g. 30s, 10m or 1h30m)");
      }
    }
    out.paused = r.Bool(upgrade, "paused", "spec.upgrade").value_or(false);
    out.rollback = r.Bool(upgrade, "rollback", "spec.upgrade").value_or(false);
    LoadCanary(r, upgrade["canary"], out);
    const YAML::Node window = upgrade["maintenanceWindow"];
    if (window.IsDefined() && !window.IsNull()) {
      r.source().fields["spec.upgrade.maintenanceWindow"] = r.Pos(window);
      if (r.ExpectMap(window, "spec.upgrade.maintenanceWindow")) {
        out.maintenance_window = LoadMaintenanceWindow(r, window);
      }
    }
  }

  // spec.upgrade.canary: true | false | {soak: <duration>} (soak default 10m).
  void LoadCanary(DocReader& r, const YAML::Node& canary, UpgradePolicy& out) {
    static constexpr int64_t kDefaultSoakSeconds = 600;
    const std::string field = "spec.upgrade.canary";
    const char* want = "want true, false or {soak: <duration>}, e.g. {soak: 10m}";
    if (!canary.IsDefined() || canary.IsNull()) {
      return;
    }
    r.source().fields[field] = r.Pos(canary);
    if (canary.IsScalar()) {
      if (canary.Scalar() == "true") {
        out.canary_soak_seconds = kDefaultSoakSeconds;
      } else if (canary.Scalar() != "false") {
        r.Error(canary, field, Quote(canary.Scalar()) + " is not a canary setting (" + want + ")");
      }
      return;
    }
    if (!canary.IsMap()) {
      r.Error(canary, field, std::string(want) + ", got " + KindOf(canary));
      return;
    }
    r.CheckKeys(canary, field, {"soak"});
    out.canary_soak_seconds = kDefaultSoakSeconds;
    if (auto s = r.Str(canary, "soak", field, false)) {
      auto d = ParseDuration(*s);
      if (d) {
        out.canary_soak_seconds = *d;
      } else {
        r.Error(canary["soak"], field + ".soak",
                Quote(*s) + " is not a duration (want e.g. 30s, 10m or 1h30m)");
      }
    }
  }

  // spec.upgrade.maintenanceWindow: {days, start, end, timeZone}.
  MaintenanceWindow LoadMaintenanceWindow(DocReader& r, const YAML::Node& window) {
    const std::string path = "spec.upgrade.maintenanceWindow";
    MaintenanceWindow w;
    r.CheckKeys(window, path, {"days", "start", "end", "timeZone"});
    if (window["days"].IsDefined() && !window["days"].IsNull()) {
      auto days = r.StrList(window, "days", path);
      if (window["days"].IsSequence() && window["days"].size() == 0) {
        r.Error(window["days"], path + ".days",
                "an empty list never opens (want at least one of mon, tue, wed, thu, fri, sat, "
                "sun, or omit days for every day)");
      }
      std::set<int> parsed;
      for (size_t i = 0; i < days.size(); ++i) {
        int day = ParseWeekday(days[i].first);
        if (day < 0) {
          r.Error(
              days[i].second, path + ".days[" + std::to_string(i) + "]",
              Quote(days[i].first) + " is not a day (want mon, tue, wed, thu, fri, sat or sun)");
        } else {
          parsed.insert(day);
        }
      }
      if (!parsed.empty()) {
        w.days.assign(parsed.begin(), parsed.end());
      }
    }
    std::optional<int> start;
    if (auto s = r.Str(window, "start", path, true)) {
      start = ParseTimeOfDay(*s, false);
      if (!start) {
        r.Error(window["start"], path + ".start",
                Quote(*s) + " is not a time of day (want HH:MM, 24-hour, e.g. 02:00)");
      }
    }
    std::optional<int> end;
    if (auto s = r.Str(window, "end", path, true)) {
      end = ParseTimeOfDay(*s, true);
      if (!end) {
        r.Error(window["end"], path + ".end",
                Quote(*s) + " is not a time of day (want HH:MM, 24-hour, e.g. 05:00, or 24:00)");
      } else if (start && *end == *start) {
        r.Error(window["end"], path + ".end",
                Quote(*s) + " is the start time (want a different end; an end before the start " +
                    "spans midnight)");
        end.reset();
      }
    }
    w.start_minute = start.value_or(0);
    w.end_minute = end.value_or(w.start_minute == 0 ? 1440 : 0);
    if (auto s = r.Str(window, "timeZone", path, false)) {
      if (auto why = CheckTimeZone(*s)) {
        r.Error(window["timeZone"], path + ".timeZone", Quote(*s) + " " + *why);
      } else {
        w.time_zone = *s;
      }
    }
    return w;
  }

  // 0 = Sunday .. 6 = Saturday; -1 if `text` is not a day name ("mon" or
  // "monday", any case).
  static int ParseWeekday(const std::string& text) {
    static const char* const kNames[] = {"sunday",   "monday", "tuesday", "wednesday",
                                         "thursday", "friday", "saturday"};
    std::string lower;
    for (char ch : text) {
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    for (int i = 0; i < 7; ++i) {
      std::string_view name = kNames[i];
      if (lower == name || lower == name.substr(0, 3)) {
        return i;
      }
    }
    return -1;
  }

  // "HH:MM" (24-hour, two digits each) in minutes after midnight; "24:00"
  // (1440) only when `allow_24` (an end time).
  static std::optional<int> ParseTimeOfDay(const std::string& text, bool allow_24) {
    auto digit = [&](size_t i) { return std::isdigit(static_cast<unsigned char>(text[i])) != 0; };
    if (text.size() != 5 || text[2] != ':' || !digit(0) || !digit(1) || !digit(3) || !digit(4)) {
      return std::nullopt;
    }
    int hour = (text[0] - '0') * 10 + (text[1] - '0');
    int minute = (text[3] - '0') * 10 + (text[4] - '0');
    if (allow_24 && hour == 24 && minute == 0) {
      return 1440;
    }
    if (hour > 23 || minute > 59) {
      return std::nullopt;
    }
    return hour * 60 + minute;
  }

  // Why `name` is not a usable IANA time zone (completes `"<name>" ...`), or
  // nullopt when kZoneInfoDir holds a TZif file for it.
  static std::optional<std::string> CheckTimeZone(const std::string& name) {
    namespace fs = std::filesystem;
    const std::string want = "want an IANA name such as Europe/Berlin, America/New_York or UTC";
    bool safe = !name.empty() && name.front() != '/' && name.back() != '/';
    for (char ch : name) {
      safe = safe && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '/' || ch == '_' ||
                      ch == '-' || ch == '+' || ch == '.');
    }
    for (const auto& part : fs::path(name)) {
      safe = safe && part != "." && part != "..";
    }
    if (!safe) {
      return "is not a time zone name (" + want + ")";
    }
    if (name.starts_with("right/")) {
      // Leap-second timestamps; reconcilers/maintenance_window.h refuses them.
      return "is a leap-second zone (want the POSIX-time name without \"right/\", e.g. " +
             Quote(name.substr(6)) + ")";
    }
    const fs::path file = fs::path(kZoneInfoDir) / name;
    std::error_code ec;
    if (fs::is_regular_file(file, ec)) {
      std::ifstream in(file, std::ios::binary);
      char magic[4] = {};
      if (in.read(magic, 4) && std::string_view(magic, 4) == "TZif") {
        return std::nullopt;
      }
    }
    std::string message = "is not a known time zone (no TZif file " + file.string() + "; " + want;
    if (std::string near = NearestZone(name); !near.empty()) {
      message += "; did you mean " + Quote(near) + "?";
    }
    return message + ")";
  }

  // The zone name closest to `name`, component by component ("Europe/Berln"
  // -> "Europe/Berlin"); empty if a component has no plausible match.
  static std::string NearestZone(const std::string& name) {
    namespace fs = std::filesystem;
    fs::path dir = kZoneInfoDir;
    std::string out;
    for (const auto& part : fs::path(name)) {
      std::vector<std::string> entries;
      std::error_code ec;
      for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        entries.push_back(it->path().filename().string());
      }
      std::string near = NearestWord(part.string(), entries);
      if (near.empty()) {
        return "";
      }
      out += (out.empty() ? "" : "/") + near;
      dir /= near;
    }
    std::error_code ec;
    return fs::is_regular_file(dir, ec) ? out : std::string();
  }

  std::vector<std::string> KernelArgs(DocReader& r, const YAML::Node& spec,
                                      const std::string& path) {
    std::vector<std::string> out;
    size_t i = 0;
    for (const auto& [arg, node] : r.StrList(spec, "kernelArgs", path)) {
      const std::string field = path + ".kernelArgs[" + std::to_string(i++) + "]";
      if (arg.empty() || arg.find_first_of(" \t\n") != std::string::npos) {
        r.Error(node, field, Quote(arg) + " is not one kernel argument (want no spaces)");
      } else if (arg.starts_with("talos.config=")) {
        r.Error(node, field,
                Quote(arg) + " is set by ironboot (it points at <bootServerURL>/config)");
      } else {
        out.push_back(arg);
      }
    }
    return out;
  }

  std::optional<ReleaseAsset> Asset(DocReader& r, const YAML::Node& spec, const std::string& key,
                                    const std::string& default_url) {
    ReleaseAsset a;
    a.url = default_url;
    const std::string field = "spec." + key;
    const YAML::Node n = spec[key];
    if (n.IsDefined()) {
      if (!r.ExpectMap(n, field)) {
        return std::nullopt;
      }
      r.CheckKeys(n, field, {"url", "sha512"});
      if (auto s = r.Str(n, "url", field, true)) {
        // file:// serves air-gapped sites and tests.
        if (ParseHttpUrl(*s) || s->starts_with("file:///")) {
          a.url = *s;
        } else {
          r.Error(n["url"], field + ".url",
                  Quote(*s) + " is not a URL (want https://..., http://... or file:///...)");
        }
      }
      if (auto s = r.Str(n, "sha512", field, false)) {
        std::string lower;
        for (char c : *s) {
          lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        if (lower.size() != 128 ||
            lower.find_first_not_of("0123456789abcdef") != std::string::npos) {
          r.Error(n["sha512"], field + ".sha512",
                  Quote(s->size() > 20 ? s->substr(0, 20) + "..." : *s) +
                      " is not a SHA-512 digest (want 128 hex digits)");
        } else {
          a.sha512 = lower;
        }
      }
    }
    a.sum_file_name = a.url.substr(a.url.rfind('/') + 1);
    return a;
  }

  void LoadRelease(DocReader& r, const std::string& name, const YAML::Node& spec) {
    TalosRelease t;
    t.name = name;
    r.CheckKeys(spec, "spec",
                {"version", "arch", "kernel", "initramfs", "sha512sumURL", "installerImage"});
    auto version = Version(r, spec, "version", "spec", true);
    if (auto a = r.Str(spec, "arch", "spec", false)) {
      if (*a == "amd64" || *a == "arm64") {
        t.arch = *a;
      } else {
        r.Error(spec["arch"], "spec.arch",
                Quote(*a) + " is not an architecture (want amd64 or arm64)");
      }
    }
    if (!version) {
      return;
    }
    t.version = *version;
    // Defaults: the GitHub release assets (FACTS.md, "PXE boot").
    const std::string base =
        "https://github.com/siderolabs/talos/releases/download/" + t.version.text + "/";
    auto kernel = Asset(r, spec, "kernel", base + "vmlinuz-" + t.arch);
    auto initramfs = Asset(r, spec, "initramfs", base + "initramfs-" + t.arch + ".xz");
    bool custom = spec["kernel"].IsDefined() || spec["initramfs"].IsDefined();
    if (auto s = r.Str(spec, "sha512sumURL", "spec", false)) {
      if (ParseHttpUrl(*s) || s->starts_with("file:///")) {
        t.sha512sum_url = *s;
      } else {
        r.Error(spec["sha512sumURL"], "spec.sha512sumURL",
                Quote(*s) + " is not a URL (want https://..., http://... or file:///...)");
      }
    } else if (!custom) {
      t.sha512sum_url = base + "sha512sum.txt";
    }
    t.installer_image = r.Str(spec, "installerImage", "spec", false)
                            .value_or("ghcr.io/siderolabs/installer:" + t.version.text);
    if (!kernel || !initramfs) {
      return;
    }
    t.kernel = *kernel;
    t.initramfs = *initramfs;
    for (auto [asset, key] :
         {std::pair{&t.kernel, "kernel"}, std::pair{&t.initramfs, "initramfs"}}) {
      if (asset->sha512.empty() && t.sha512sum_url.empty()) {
        r.ErrorAt(r.source().At("spec." + std::string(key) + ".url"), "spec." + std::string(key),
                  "no way to verify " + Quote(asset->url) + " (want spec." + key +
                      ".sha512 or spec.sha512sumURL)");
      }
    }
    t.source = r.source();
    for (const auto& other : state_.releases) {
      if (other.version.text == t.version.text && other.arch == t.arch) {
        r.ErrorAt(t.source.At("spec.version"), "spec.version",
                  "TalosRelease " + Quote(t.version.text + "/" + t.arch) +
                      " is defined twice (also " + Quote(other.name) + " at " +
                      other.source.document.file + ":" +
                      std::to_string(other.source.document.line) + ")");
        return;
      }
      if (other.name == t.name) {
        r.ErrorAt(t.source.document, "metadata.name",
                  "TalosRelease name " + Quote(name) + " is used twice (also at " +
                      other.source.document.file + ":" +
                      std::to_string(other.source.document.line) + ")");
        return;
      }
    }
    state_.releases.push_back(std::move(t));
  }

  void LoadMachine(DocReader& r, const std::string& name,
                   const std::map<std::string, std::string>& labels, const YAML::Node& spec) {
    Machine m;
    m.name = name;
    m.labels = labels;
    if (!name.empty()) {
      if (auto bad = CheckDnsLabel(name)) {
        r.ErrorAt(r.source().At("metadata.name"), "metadata.name",
                  Quote(name) + " is not " + bad->what + " (" + bad->reason + ")");
      }
    }
    r.CheckKeys(spec, "spec",
                {"role", "mac", "macs", "uuid", "serial", "address", "interface", "installDisk",
                 "installDiskSelector", "talosVersion", "arch", "kernelArgs", "patches", "paused"});
    if (auto role = r.Str(spec, "role", "spec", true)) {
      if (*role == "controlplane") {
        m.role = Role::kControlPlane;
      } else if (*role == "worker") {
        m.role = Role::kWorker;
      } else {
        r.Error(spec["role"], "spec.role",
                Quote(*role) + " is not a role (want controlplane or worker)");
      }
    }
    std::vector<std::pair<std::string, YAML::Node>> macs;
    std::string mac_field = "spec.macs";
    if (spec["mac"].IsDefined() && spec["macs"].IsDefined()) {
      r.Error(spec["macs"], "spec.macs", "set either spec.mac or spec.macs, not both");
    } else if (spec["mac"].IsDefined()) {
      mac_field = "spec.mac";
      if (auto s = r.Str(spec, "mac", "spec", true)) {
        macs.emplace_back(*s, spec["mac"]);
      }
    } else if (spec["macs"].IsDefined()) {
      macs = r.StrList(spec, "macs", "spec");
      if (macs.empty()) {
        r.Error(spec["macs"], "spec.macs", "want at least one MAC address");
      }
    } else {
      r.Error(spec, "spec.mac",
              "required field is missing (the MAC address the machine boots with)");
    }
    for (size_t i = 0; i < macs.size(); ++i) {
      std::string field =
          mac_field == "spec.mac" ? mac_field : mac_field + "[" + std::to_string(i) + "]";
      auto mac = ParseMac(macs[i].first);
      if (!mac) {
        r.Error(
            macs[i].second, field,
            Quote(macs[i].first) + " is not " + mac.error().what + " (" + mac.error().reason + ")");
        continue;
      }
      r.source().fields["mac:" + *mac] = r.Pos(macs[i].second);
      m.macs.push_back(*mac);
    }
    m.uuid = r.Str(spec, "uuid", "spec", false).value_or("");
    m.serial = r.Str(spec, "serial", "spec", false).value_or("");
    if (auto s = r.Str(spec, "address", "spec", false)) {
      auto p = ParseIpPrefix(*s, false);
      if (p) {
        m.address = *p;
      } else {
        r.Error(spec["address"], "spec.address",
                Quote(*s) + " is not " + p.error().what + " (" + p.error().reason + ")");
      }
    }
    m.interface = r.Str(spec, "interface", "spec", false).value_or("");
    m.install_disk = r.Str(spec, "installDisk", "spec", false).value_or("");
    m.install_disk_selector = r.StrMap(spec, "installDiskSelector", "spec");
    if (!m.install_disk.empty() && !m.install_disk_selector.empty()) {
      r.Error(spec["installDiskSelector"], "spec.installDiskSelector",
              "set either spec.installDisk or spec.installDiskSelector, not both");
    }
    m.talos_version = Version(r, spec, "talosVersion", "spec", false);
    if (auto a = r.Str(spec, "arch", "spec", false)) {
      if (*a == "amd64" || *a == "arm64") {
        m.arch = *a;
      } else {
        r.Error(spec["arch"], "spec.arch",
                Quote(*a) + " is not an architecture (want amd64 or arm64)");
      }
    }
    m.kernel_args = KernelArgs(r, spec, "spec");
    m.patches = Patches(r, spec, "patches", "spec");
    m.paused = r.Bool(spec, "paused", "spec").value_or(false);
    m.source = r.source();
    state_.machines.push_back(std::move(m));
  }

  std::string Where(const Position& p) const { return p.file + ":" + std::to_string(p.line); }

  void CrossChecks() {
    const Cluster* cluster = state_.cluster ? &*state_.cluster : nullptr;
    if (!cluster) {
      if (!state_.machines.empty()) {
        diags_.Error(state_.machines.front().source.document, "",
                     "no Cluster document in the repository (machines need one: kind: Cluster)");
      }
      return;
    }
    // Unique names, MACs, addresses.
    std::map<std::string, const Machine*> by_name;
    std::map<std::string, const Machine*> by_mac;
    std::map<IpAddress, const Machine*> by_address;
    std::set<Role> roles_in_use;
    std::vector<std::string> controlplanes;
    for (auto& m : state_.machines) {
      if (!m.name.empty()) {
        auto [it, fresh] = by_name.emplace(m.name, &m);
        if (!fresh) {
          diags_.Error(m.source.At("metadata.name"), "metadata.name",
                       "machine name " + Quote(m.name) + " is used twice (also at " +
                           Where(it->second->source.At("metadata.name")) + ")");
        }
      }
      for (const auto& mac : m.macs) {
        auto [it, fresh] = by_mac.emplace(mac, &m);
        if (!fresh) {
          diags_.Error(m.source.At("mac:" + mac), "spec.mac",
                       "MAC " + Quote(mac) + " of machine " + Quote(m.name) + " is also machine " +
                           Quote(it->second->name) + "'s (at " +
                           Where(it->second->source.At("mac:" + mac)) + ")");
        }
      }
      if (m.address) {
        if (cluster->subnet) {
          if (!cluster->subnet->Contains(m.address->address)) {
            diags_.Error(m.source.At("spec.address"), "spec.address",
                         Quote(m.address->ToString()) + " is outside the cluster's subnet " +
                             cluster->subnet->ToString() + " (Cluster spec.subnet)");
          } else if (m.address->prefix_length < 0) {
            m.address->prefix_length = cluster->subnet->prefix_length;
          }
        }
        if (m.address->prefix_length < 0) {
          diags_.Error(m.source.At("spec.address"), "spec.address",
                       Quote(m.address->ToString()) +
                           " has no prefix length (want CIDR, e.g. 10.0.4.101/24, or set the "
                           "Cluster's spec.subnet)");
        }
        auto [it, fresh] = by_address.emplace(m.address->address, &m);
        if (!fresh) {
          diags_.Error(m.source.At("spec.address"), "spec.address",
                       "address " + Quote(m.address->address.ToString()) + " of machine " +
                           Quote(m.name) + " is also machine " + Quote(it->second->name) +
                           "'s (at " + Where(it->second->source.At("spec.address")) + ")");
        }
      }
      roles_in_use.insert(m.role);
      if (m.role == Role::kControlPlane) {
        controlplanes.push_back(m.name);
      }
    }
    // Raw Matchbox groups must not claim a machine's MAC.
    for (const auto& g : state_.raw_groups) {
      auto sel = g.selector.find("mac");
      if (sel != g.selector.end() && by_mac.contains(sel->second)) {
        diags_.Error(Position{g.source, 0, 0}, "selector.mac",
                     "MAC " + Quote(sel->second) + " is also machine " +
                         Quote(by_mac[sel->second]->name) +
                         "'s (a machine's MAC boots only one way)");
      }
    }
    // Referenced releases exist.
    std::set<std::string> reported;
    for (const auto& m : state_.machines) {
      const TalosVersion& v = m.DesiredVersion(*cluster);
      if (v.text.empty() || state_.FindRelease(v, m.arch)) {
        continue;
      }
      std::vector<std::string> defined;
      for (const auto& r : state_.releases) {
        defined.push_back(r.version.text + "/" + r.arch);
      }
      std::string want = v.text + "/" + m.arch;
      std::string msg = "no TalosRelease for " + want + " (defined: " +
                        (defined.empty() ? std::string("none") : Join(defined, ", ")) + ")";
      if (m.talos_version) {
        diags_.Error(m.source.At("spec.talosVersion"), "spec.talosVersion", msg);
      } else if (reported.insert(want).second) {
        diags_.Error(cluster->source.At("spec.talosVersion"), "spec.talosVersion",
                     msg + ", needed by machine " + Quote(m.name));
      }
    }
    // Base configs for the roles in use.
    for (Role role : options_.base_configs_from_secrets ? std::set<Role>{} : roles_in_use) {
      const std::string& path = role == Role::kControlPlane ? cluster->base_config_controlplane
                                                            : cluster->base_config_worker;
      if (!files_.contains(path)) {
        std::string field = std::string("spec.baseConfigs.") + RoleName(role);
        diags_.Error(cluster->source.At(field), field,
                     "base config " + Quote(path) + " not found (machines with role " +
                         RoleName(role) + " need it: the file talosctl gen config writes, e.g. " +
                         RoleName(role) + ".yaml)");
      }
    }
    // etcd quorum: an even count tolerates no more failures than one fewer.
    if (!controlplanes.empty() && controlplanes.size() % 2 == 0) {
      diags_.Warning(cluster->source.document, "",
                     std::to_string(controlplanes.size()) + " control planes (" +
                         JoinFirst(controlplanes, 5) +
                         "): an even number tolerates no more failures than one fewer; want an "
                         "odd number (1, 3, 5)");
    }
    // Upgrades may not skip a minor release (FACTS.md, "Versions").
    std::map<std::pair<std::string, std::string>, std::vector<std::string>> skips;
    std::map<std::pair<std::string, std::string>, Position> skip_pos;
    for (const auto& m : state_.machines) {
      auto it = options_.current_versions.find(m.name);
      if (it == options_.current_versions.end()) {
        continue;
      }
      auto from = ParseTalosVersion(it->second);
      const TalosVersion& to = m.DesiredVersion(*cluster);
      if (!from || to.text.empty()) {
        continue;
      }
      bool skip = to.major != from->major ? to.major > from->major : to.minor > from->minor + 1;
      if (!skip) {
        continue;
      }
      // One error per place that sets the version: the Cluster, or each pin.
      auto key = std::pair{m.talos_version ? "machine:" + m.name : std::string("cluster"),
                           from->text + " -> " + to.text};
      skips[key].push_back(m.name);
      skip_pos[key] = m.talos_version ? m.source.At("spec.talosVersion")
                                      : cluster->source.At("spec.talosVersion");
    }
    for (const auto& [key, names] : skips) {
      const std::string& change = key.second;
      auto from = ParseTalosVersion(change.substr(0, change.find(' ')));
      auto to = ParseTalosVersion(change.substr(change.rfind(' ') + 1));
      std::string next_minor =
          "v" + std::to_string(from->major) + "." + std::to_string(from->minor + 1);
      diags_.Error(skip_pos[key], "spec.talosVersion",
                   Quote(to->text) + " skips a minor release: " +
                       (names.size() == 1 ? "machine " + Quote(names[0]) + " runs "
                                          : std::to_string(names.size()) + " machines (" +
                                                JoinFirst(names, 5) + ") run ") +
                       from->text + "; upgrade through the latest " + next_minor +
                       ".x first (Talos upgrades go one minor release at a time)");
    }
  }

  const RepoFiles& files_;
  const LoadOptions& options_;
  Diagnostics diags_;
  DesiredState state_;
  std::map<std::string, std::string> base_config_refs_;
};

}  // namespace

std::expected<DesiredState, Diagnostics> Load(const RepoFiles& files, const LoadOptions& options) {
  return Loader(files, options).Run();
}

}  // namespace ironboot::manifests
