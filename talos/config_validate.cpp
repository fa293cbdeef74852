#include "talos/config_validate.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <optional>

#include "talos/yaml_value.h"

namespace ironboot::talos {

using nlohmann::json;

namespace {

// "v1.11.3", "1.11", "v1.14.0-rc.1" -> {1, 11}.
std::optional<std::pair<int, int>> ParseMinor(std::string_view version) {
  if (!version.empty() && version[0] == 'v') {
    version.remove_prefix(1);
  }
  int major = 0;
  int minor = 0;
  const char* end = version.data() + version.size();
  auto [p, ec] = std::from_chars(version.data(), end, major);
  if (ec != std::errc() || p == end || *p != '.') {
    return std::nullopt;
  }
  auto [q, ec2] = std::from_chars(p + 1, end, minor);
  if (ec2 != std::errc() || (q != end && *q != '.' && *q != '-')) {
    return std::nullopt;
  }
  return std::pair{major, minor};
}

std::string MinorName(std::pair<int, int> m) {
  return "v" + std::to_string(m.first) + "." + std::to_string(m.second);
}

// Minor -> embedded schema, from the names "config.schema.v1.N[...].json".
const std::map<std::pair<int, int>, EmbeddedSchema>& SchemasByMinor() {
  static const auto* by_minor = [] {
    auto* out = new std::map<std::pair<int, int>, EmbeddedSchema>();
    constexpr std::string_view kPrefix = "config.schema.";
    for (const auto& s : EmbeddedTalosSchemas()) {
      if (s.name.starts_with(kPrefix)) {
        if (auto m = ParseMinor(s.name.substr(kPrefix.size()))) {
          (*out)[*m] = s;
        }
      }
    }
    return out;
  }();
  return *by_minor;
}

std::string Supported() {
  std::string out;
  for (const auto& minor : SupportedTalosMinors()) {
    out += (out.empty() ? "" : ", ") + minor;
  }
  return out;
}

// Fields Talos keeps accepting after its schema stopped describing them.
// Source: FACTS.md (Talos sources v1.11.6..v1.14.0-rc.1) and a diff of the
// embedded schemas: each field below is in the v1.11 (or v1.13) schema and
// absent from later ones because it moved to a document of its own or became
// a no-op, while the v1alpha1 decoder still reads it. Such a field is reported
// as a warning and its content is not schema-checked.
constexpr DeprecatedField kDeprecated[] = {
    // Every minor: fields of old configs (Talos 1.0-era `talosctl gen config`
    // output, e.g. Talos's own decoder testdata) that the decoder still reads.
    {"v1.11", "/persist", "deprecated; Talos ignores it"},
    {"v1.11", "/machine/install/bootloader", "deprecated; Talos ignores it"},
    {"v1.11", "/machine/systemDiskEncryption", "superseded by VolumeConfig encryption documents"},
    // v1.12: boot-time kernel args moved to the boot assets (Image Factory).
    {"v1.12", "/machine/install/extraKernelArgs",
     "kernel args belong to the boot assets since Talos 1.12"},
    // v1.12: network, time and registry settings got their own documents.
    {"v1.12", "/machine/network/hostname", "superseded by a HostnameConfig document"},
    {"v1.12", "/machine/network/interfaces",
     "superseded by LinkConfig/BondConfig/VLANConfig/Layer2VIPConfig documents"},
    {"v1.12", "/machine/network/nameservers", "superseded by a ResolverConfig document"},
    {"v1.12", "/machine/network/searchDomains", "superseded by a ResolverConfig document"},
    {"v1.12", "/machine/network/disableSearchDomain", "superseded by a ResolverConfig document"},
    {"v1.12", "/machine/network/extraHostEntries", "superseded by StaticHostConfig documents"},
    {"v1.12", "/machine/time", "superseded by a TimeSyncConfig document"},
    {"v1.12", "/machine/registries",
     "superseded by RegistryMirrorConfig/RegistryAuthConfig/RegistryTLSConfig documents"},
    {"v1.12", "/machine/features/rbac", "always on; the field is ignored"},
    {"v1.12", "/machine/features/stableHostname", "superseded by a HostnameConfig document"},
    {"v1.12", "/machine/features/apidCheckExtKeyUsage", "always on; the field is ignored"},
    {"v1.12", "/cluster/apiServer/disablePodSecurityPolicy",
     "PodSecurityPolicy is gone from Kubernetes; ignored"},
    // v1.13: the whole machine.network block and machine.env.
    {"v1.13", "/machine/network",
     "superseded by network documents (HostnameConfig, LinkConfig, ...)"},
    {"v1.13", "/machine/env", "superseded by an EnvironmentConfig document"},
    // v1.14: Kubernetes and install settings move to k8s.* / runtime documents.
    {"v1.14", "/cluster", "cluster settings move to k8s.* documents in Talos 1.14"},
    {"v1.14", "/machine/install", "superseded by install documents in Talos 1.14"},
    {"v1.14", "/machine/kubelet", "superseded by a KubeletConfig document"},
    {"v1.14", "/machine/kernel", "superseded by KernelModuleConfig documents"},
    {"v1.14", "/machine/udev", "superseded by a UdevRulesConfig document"},
    {"v1.14", "/machine/files", "superseded by EtcFileConfig documents"},
    {"v1.14", "/machine/sysctls", "superseded by a SysctlConfig document"},
    {"v1.14", "/machine/sysfs", "superseded by a SysfsConfig document"},
    {"v1.14", "/machine/nodeLabels", "superseded by a KubeNodeConfig document"},
    {"v1.14", "/machine/nodeTaints", "superseded by a KubeNodeConfig document"},
    {"v1.14", "/machine/nodeAnnotations", "superseded by a KubeNodeConfig document"},
    {"v1.14", "/machine/pods", "superseded by KubeStaticPodConfig documents"},
    {"v1.14", "/machine/controlPlane", "superseded by k8s.* documents"},
    {"v1.14", "/machine/baseRuntimeSpecOverrides",
     "superseded by a CRIBaseRuntimeSpecConfig document"},
    {"v1.14", "/machine/features/kubePrism", "superseded by a KubePrismConfig document"},
    {"v1.14", "/machine/features/kubernetesTalosAPIAccess",
     "superseded by a KubeTalosAPIAccessConfig document"},
    {"v1.14", "/machine/features/imageCache", "superseded by an ImageCacheConfig document"},
    {"v1.14", "/machine/features/hostDNS", "superseded by a ResolverConfig document"},
};

const DeprecatedField* FindDeprecated(std::pair<int, int> minor, std::string_view path) {
  for (const auto& d : kDeprecated) {
    auto since = ParseMinor(d.minor);
    if (since && minor >= *since && path == d.pointer) {
      return &d;
    }
  }
  return nullptr;
}

// YAML value tree -> JSON, numbers as YAML 1.2's core schema reads them.
json ToJson(const Value& v) {
  switch (v.kind) {
    case ValueKind::kNull:
      return nullptr;
    case ValueKind::kBool:
      return v.scalar == "true" || v.scalar == "True" || v.scalar == "TRUE";
    case ValueKind::kInt: {
      std::string_view text = v.scalar;
      bool negative = false;
      if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
        negative = text[0] == '-';
        text.remove_prefix(1);
      }
      int base = 10;
      if (text.starts_with("0x")) {
        base = 16;
        text.remove_prefix(2);
      } else if (text.starts_with("0o")) {
        base = 8;
        text.remove_prefix(2);
      }
      std::int64_t n = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n, base);
      if (ec == std::errc() && p == text.data() + text.size()) {
        return negative ? -n : n;
      }
      return v.scalar;  // out of range: keep the text
    }
    case ValueKind::kFloat: {
      try {
        return std::stod(v.scalar);
      } catch (const std::exception&) {
        return v.scalar;  // .inf/.nan: not JSON numbers
      }
    }
    case ValueKind::kString:
      return v.scalar;
    case ValueKind::kSequence: {
      json out = json::array();
      for (const auto& item : v.items) {
        out.push_back(ToJson(item));
      }
      return out;
    }
    case ValueKind::kMap: {
      json out = json::object();
      for (const auto& e : v.entries) {
        out[e.key] = ToJson(e.value);
      }
      return out;
    }
  }
  return nullptr;
}

const json* At(const json& doc, std::initializer_list<std::string_view> keys) {
  const json* cur = &doc;
  for (auto key : keys) {
    if (!cur->is_object()) {
      return nullptr;
    }
    auto it = cur->find(std::string(key));
    if (it == cur->end()) {
      return nullptr;
    }
    cur = &*it;
  }
  return cur;
}

// An https URL: "https://" host [":" port] [path], host non-empty.
std::optional<std::string> HttpsUrlProblem(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (!url.starts_with(kScheme)) {
    return std::string("is not an https URL");
  }
  std::string_view rest = url.substr(kScheme.size());
  rest = rest.substr(0, rest.find_first_of("/?#"));
  std::string_view host = rest;
  std::string_view port;
  if (rest.starts_with("[")) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) {
      return std::string("has an unclosed [ in its host");
    }
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return std::string("has text after its [IPv6] host");
      }
      port = after.substr(1);
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty() || host.find_first_of(" \t@") != std::string_view::npos) {
    return std::string("has no valid host");
  }
  if (rest.find(':') != std::string_view::npos || !port.empty()) {
    int n = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc() || p != port.data() + port.size() || n < 1 || n > 65535) {
      return "has an invalid port \"" + std::string(port) + "\"";
    }
  }
  return std::nullopt;
}

// A hostname: dot-separated DNS labels (RFC 1123), each 1-63 letters,
// digits or '-', not starting or ending with '-'; 253 characters at most.
std::optional<std::string> HostnameProblem(std::string_view name) {
  if (name.empty()) {
    return std::string("is empty");
  }
  if (name.size() > 253) {
    return "is " + std::to_string(name.size()) + " characters long (at most 253)";
  }
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    std::string quoted = "label \"" + std::string(label) + "\"";
    if (label.empty()) {
      return std::string("has an empty label");
    }
    if (label.size() > 63) {
      return quoted + " is " + std::to_string(label.size()) + " characters long (at most 63)";
    }
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return quoted + " contains '" + std::string(1, c) + "'";
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return quoted + " starts or ends with '-'";
    }
    if (dot == std::string_view::npos) {
      break;
    }
    start = dot + 1;
  }
  return std::nullopt;
}

constexpr std::string_view kHostnameWant =
    " (want DNS labels of letters, digits and '-', 1-63 characters each, not starting or ending "
    "with '-')";

void SemanticChecks(const json& doc, std::size_t index, const MachineConfigExpectations& expect,
                    ValidationReport& report) {
  auto error = [&](std::string path, std::string message) {
    report.errors.push_back(ConfigIssue{index, std::move(path), std::move(message), ""});
  };
  // cluster.controlPlane.endpoint
  const json* endpoint = At(doc, {"cluster", "controlPlane", "endpoint"});
  if (endpoint == nullptr) {
    error("/cluster/controlPlane/endpoint",
          "is not set (want an https URL such as https://10.0.0.10:6443)");
  } else if (!endpoint->is_string()) {
    error("/cluster/controlPlane/endpoint",
          "is not a string (want an https URL such as https://10.0.0.10:6443)");
  } else if (auto problem = HttpsUrlProblem(endpoint->get_ref<const std::string&>())) {
    error("/cluster/controlPlane/endpoint",
          "\"" + endpoint->get<std::string>() + "\" " + *problem +
              " (want https://<host>[:<port>], e.g. https://10.0.0.10:6443)");
  }
  // control-plane addresses in certSANs, on control-plane configs.
  const json* type = At(doc, {"machine", "type"});
  bool control_plane = type && type->is_string() && (*type == "controlplane" || *type == "init");
  if (control_plane) {
    std::vector<std::string> sans;
    if (const json* list = At(doc, {"machine", "certSANs"}); list && list->is_array()) {
      for (const auto& s : *list) {
        if (s.is_string()) {
          sans.push_back(s.get<std::string>());
        }
      }
    }
    for (const auto& address : expect.control_plane_addresses) {
      if (std::find(sans.begin(), sans.end(), address) == sans.end()) {
        std::string have;
        for (const auto& s : sans) {
          have += (have.empty() ? "" : ", ") + s;
        }
        error("/machine/certSANs",
              "control-plane address " + address + " is missing (certSANs: [" + have +
                  "]); the Talos and Kubernetes API certificates would not be valid for it");
      }
    }
  }
  // An install target.
  const json* disk = At(doc, {"machine", "install", "disk"});
  const json* selector = At(doc, {"machine", "install", "diskSelector"});
  bool has_disk = disk && disk->is_string() && !disk->get_ref<const std::string&>().empty();
  bool has_selector = selector && selector->is_object() && !selector->empty();
  if (!has_disk && !has_selector) {
    error("/machine/install",
          "neither disk nor diskSelector is set; Talos would not know where to install "
          "(want e.g. disk: /dev/sda, or diskSelector: {size: '>= 100GB'})");
  }
  // The hostname.
  if (const json* hostname = At(doc, {"machine", "network", "hostname"});
      hostname && hostname->is_string()) {
    if (auto problem = HostnameProblem(hostname->get_ref<const std::string&>())) {
      error("/machine/network/hostname", "\"" + hostname->get<std::string>() +
                                             "\" is not a valid hostname: " + *problem +
                                             std::string(kHostnameWant));
    }
  }
}

// The $defs entry describing documents of `kind` (its properties.kind.enum).
std::optional<std::string> DefinitionForKind(const json& schema, const std::string& kind) {
  auto defs = schema.find("$defs");
  if (defs == schema.end()) {
    return std::nullopt;
  }
  for (const auto& [name, def] : defs->items()) {
    const json* kinds = At(def, {"properties", "kind", "enum"});
    if (kinds && kinds->is_array() &&
        std::find(kinds->begin(), kinds->end(), json(kind)) != kinds->end()) {
      return "/$defs/" + name;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string ConfigIssue::ToString() const {
  std::string out = "document " + std::to_string(document + 1) + ": " +
                    (path.empty() ? "/" : path) + ": " + message;
  if (!schema_path.empty()) {
    out += " (schema #" + schema_path + ")";
  }
  return out;
}

std::string ValidationReport::ToString() const {
  std::string out;
  for (const auto& e : errors) {
    out += "error: " + e.ToString() + "\n";
  }
  for (const auto& w : warnings) {
    out += "warning: " + w.ToString() + "\n";
  }
  for (const auto& n : not_checked) {
    out += "note: " + n + "\n";
  }
  return out;
}

std::vector<std::string> SupportedTalosMinors() {
  std::vector<std::string> out;
  for (const auto& [minor, _] : SchemasByMinor()) {
    out.push_back(MinorName(minor));
  }
  return out;
}

std::span<const DeprecatedField> DeprecatedFields() {
  return kDeprecated;
}

Result<JsonSchema> TalosConfigSchema(std::string_view talos_version) {
  auto minor = ParseMinor(talos_version);
  if (!minor) {
    return Fail(ErrorCode::kInvalid, "Talos version \"" + std::string(talos_version) +
                                         "\" is not a version (want e.g. v1.11.3)");
  }
  const auto& schemas = SchemasByMinor();
  auto it = schemas.find(*minor);
  if (it == schemas.end()) {
    return Fail(ErrorCode::kInvalid, "no machine-config schema for Talos " + MinorName(*minor) +
                                         " (have " + Supported() + ")");
  }
  static std::mutex mu;
  static std::map<std::pair<int, int>, JsonSchema> compiled;  // guarded by mu
  std::lock_guard lock(mu);
  if (auto c = compiled.find(*minor); c != compiled.end()) {
    return c->second;
  }
  json document;
  try {
    document = json::parse(it->second.text);
  } catch (const json::exception& e) {
    return Fail(ErrorCode::kInternal,
                "embedded " + std::string(it->second.name) + " does not parse: " + e.what());
  }
  auto schema = JsonSchema::Compile(document);
  if (!schema) {
    return std::unexpected(schema.error().Wrap("compile " + std::string(it->second.name)));
  }
  compiled.emplace(*minor, *schema);
  return *schema;
}

Result<ValidationReport> ValidateMachineConfig(std::string_view yaml,
                                               std::string_view talos_version,
                                               const MachineConfigExpectations& expect) {
  auto schema = TalosConfigSchema(talos_version);
  if (!schema) {
    return std::unexpected(schema.error());
  }
  auto minor = *ParseMinor(talos_version);
  auto documents = ParseYamlDocuments(yaml, "machine config");
  if (!documents) {
    return std::unexpected(documents.error());
  }
  ValidationReport report;
  report.talos_minor = MinorName(minor);
  report.schema_name = std::string(SchemasByMinor().at(minor).name);
  ValidateOptions options;
  options.quote_values = false;  // configs hold keys and tokens
  bool found_v1alpha1 = false;
  for (std::size_t i = 0; i < documents->size(); ++i) {
    json doc = ToJson((*documents)[i]);
    std::string where = "document " + std::to_string(i + 1);
    std::string definition;
    bool v1alpha1 = doc.is_object() && doc.contains("version") && !doc.contains("kind");
    if (v1alpha1) {
      if (found_v1alpha1) {
        report.errors.push_back(
            ConfigIssue{i, "", "a second v1alpha1 document; a config has exactly one", ""});
        continue;
      }
      found_v1alpha1 = true;
      definition = "/$defs/v1alpha1.Config";
    } else if (const json* kind = At(doc, {"kind"}); kind && kind->is_string()) {
      auto def = DefinitionForKind(schema->Document(), kind->get<std::string>());
      if (!def) {
        report.not_checked.push_back(where + " (" + kind->get<std::string>() +
                                     "): not checked, the " + report.schema_name +
                                     " schema has no such kind");
        continue;
      }
      definition = *def;
    } else {
      report.errors.push_back(ConfigIssue{
          i, "", "is neither a v1alpha1 config (version:) nor a document with kind:", ""});
      continue;
    }
    auto errors = schema->ValidateAt(definition, doc, options);
    if (!errors) {
      return std::unexpected(errors.error().Wrap(report.schema_name));
    }
    for (auto& e : *errors) {
      const bool unknown_field = e.schema_path.ends_with("/additionalProperties");
      if (unknown_field && v1alpha1) {
        if (const DeprecatedField* d = FindDeprecated(minor, e.instance_path)) {
          report.warnings.push_back(ConfigIssue{i, e.instance_path,
                                                "deprecated: not in the " + report.schema_name +
                                                    " schema but still accepted by Talos (" +
                                                    std::string(d->note) +
                                                    "); its content is not schema-checked",
                                                e.schema_path});
          continue;
        }
      }
      report.errors.push_back(ConfigIssue{i, std::move(e.instance_path), std::move(e.message),
                                          std::move(e.schema_path)});
    }
    if (v1alpha1) {
      SemanticChecks(doc, i, expect, report);
    } else if (doc.value("kind", "") == "HostnameConfig") {
      if (const json* hostname = At(doc, {"hostname"}); hostname && hostname->is_string()) {
        if (auto problem = HostnameProblem(hostname->get_ref<const std::string&>())) {
          report.errors.push_back(ConfigIssue{i, "/hostname",
                                              "\"" + hostname->get<std::string>() +
                                                  "\" is not a valid hostname: " + *problem +
                                                  std::string(kHostnameWant),
                                              ""});
        }
      }
    }
  }
  if (!found_v1alpha1) {
    return Fail(ErrorCode::kInvalid, "machine config has no v1alpha1 document (version: v1alpha1)");
  }
  return report;
}

}  // namespace ironboot::talos
