#include "talos/config_gen.h"

#include <algorithm>

#include "talos/yaml_value.h"

namespace ironboot::talos {

namespace {

Value Str(std::string s) {
  return Value::String(std::move(s));
}

Value Scalar(std::string text, ValueKind kind) {
  Value v;
  v.kind = kind;
  v.scalar = std::move(text);
  v.plain = true;
  return v;
}
Value Bool(bool b) {
  return Scalar(b ? "true" : "false", ValueKind::kBool);
}
Value Int(int i) {
  return Scalar(std::to_string(i), ValueKind::kInt);
}

Value List(const std::vector<std::string>& items) {
  Value seq = Value::Sequence();
  for (const auto& i : items) {
    seq.items.push_back(Str(i));
  }
  return seq;
}

Value Map(std::initializer_list<std::pair<const char*, Value>> entries) {
  Value m = Value::Map();
  for (const auto& [k, v] : entries) {
    m.Set(k, v);
  }
  return m;
}

Value Pair(const CertAndKey& ca, bool with_key) {
  return Map(
      {{"crt", Str(Base64Encode(ca.crt))}, {"key", Str(with_key ? Base64Encode(ca.key) : "")}});
}

// "https://host:port/path" -> host (IPv6 brackets removed); "" if not https.
std::string EndpointHost(std::string_view endpoint) {
  constexpr std::string_view kScheme = "https://";
  if (!endpoint.starts_with(kScheme)) {
    return "";
  }
  std::string_view rest = endpoint.substr(kScheme.size());
  rest = rest.substr(0, rest.find('/'));
  if (rest.starts_with('[')) {
    size_t close = rest.find(']');
    return close == std::string_view::npos ? "" : std::string(rest.substr(1, close - 1));
  }
  return std::string(rest.substr(0, rest.find(':')));
}

Value PodSecurityAdmission() {
  return Map(
      {{"name", Str("PodSecurity")},
       {"configuration", Map({{"apiVersion", Str("pod-security.admission.config.k8s.io/v1alpha1")},
                              {"defaults", Map({{"audit", Str("restricted")},
                                                {"audit-version", Str("latest")},
                                                {"enforce", Str("baseline")},
                                                {"enforce-version", Str("latest")},
                                                {"warn", Str("restricted")},
                                                {"warn-version", Str("latest")}})},
                              {"exemptions", Map({{"namespaces", List({"kube-system"})},
                                                  {"runtimeClasses", Value::Sequence()},
                                                  {"usernames", Value::Sequence()}})},
                              {"kind", Str("PodSecurityConfiguration")}})}});
}

}  // namespace

std::string DefaultKubernetesVersion(std::string_view talos_version) {
  std::string_view v = talos_version;
  if (v.starts_with('v')) {
    v.remove_prefix(1);
  }
  struct Default {
    std::string_view prefix;
    std::string_view kubernetes;
  };
  // From FACTS.md's version table; exact releases before their minor.
  constexpr Default kDefaults[] = {{"1.11.", "1.34.1"},
                                   {"1.12.11", "1.35.4"},
                                   {"1.12.", "1.35.0"},
                                   {"1.13.", "1.36.3"},
                                   {"1.14.", "1.37.0-rc.0"}};
  for (const auto& d : kDefaults) {
    if (v.starts_with(d.prefix) || v == d.prefix.substr(0, d.prefix.size() - 1)) {
      return std::string(d.kubernetes);
    }
  }
  return "";
}

Result<std::string> GenerateMachineConfig(const ClusterValues& values, const SecretsBundle& secrets,
                                          MachineType type) {
  if (values.name.empty()) {
    return Fail(ErrorCode::kInvalid, "generate config: cluster name is empty");
  }
  std::string host = EndpointHost(values.endpoint);
  if (host.empty()) {
    return Fail(ErrorCode::kInvalid, "generate config: endpoint \"" + values.endpoint +
                                         "\" is not an https://host:port URL");
  }
  if (values.talos_version.empty()) {
    return Fail(ErrorCode::kInvalid, "generate config: Talos version is empty");
  }
  std::string k8s = values.kubernetes_version;
  if (k8s.starts_with('v')) {
    k8s.erase(0, 1);
  }
  if (k8s.empty()) {
    k8s = DefaultKubernetesVersion(values.talos_version);
    if (k8s.empty()) {
      return Fail(ErrorCode::kInvalid,
                  "generate config: no default Kubernetes version known for Talos " +
                      values.talos_version + " (set the Kubernetes version)");
    }
  }
  if (values.install_disk.empty()) {
    return Fail(ErrorCode::kInvalid, "generate config: install disk is empty");
  }
  std::string tag =
      values.talos_version.starts_with('v') ? values.talos_version : "v" + values.talos_version;
  std::string installer = values.installer_image.empty() ? "ghcr.io/siderolabs/installer:" + tag
                                                         : values.installer_image;
  bool cp = type == MachineType::kControlPlane;

  std::vector<std::string> sans = {host};
  for (const auto& a : values.control_plane_addresses) {
    if (std::find(sans.begin(), sans.end(), a) == sans.end()) {
      sans.push_back(a);
    }
  }

  Value machine = Map({
      {"type", Str(cp ? "controlplane" : "worker")},
      {"token", Str(secrets.trustd_token)},
      {"ca", Pair(secrets.os, cp)},
      {"certSANs", List(sans)},
      {"kubelet", Map({{"image", Str("ghcr.io/siderolabs/kubelet:v" + k8s)},
                       {"defaultRuntimeSeccompProfileEnabled", Bool(true)},
                       {"disableManifestsDirectory", Bool(true)}})},
      {"network", Value::Map()},
      {"install",
       Map({{"disk", Str(values.install_disk)}, {"image", Str(installer)}, {"wipe", Bool(false)}})},
      {"features",
       Map({{"rbac", Bool(true)},
            {"stableHostname", Bool(true)},
            {"apidCheckExtKeyUsage", Bool(true)},
            {"diskQuotaSupport", Bool(true)},
            {"kubePrism", Map({{"enabled", Bool(true)}, {"port", Int(7445)}})},
            {"hostDNS", Map({{"enabled", Bool(true)}, {"forwardKubeDNSToHost", Bool(true)}})}})},
  });
  if (cp) {
    machine.Set("nodeLabels",
                Map({{"node.kubernetes.io/exclude-from-external-load-balancers", Str("")}}));
  }

  Value cluster = Map({
      {"id", Str(secrets.cluster_id)},
      {"secret", Str(secrets.cluster_secret)},
      {"controlPlane", Map({{"endpoint", Str(values.endpoint)}})},
      {"clusterName", Str(values.name)},
      {"network", Map({{"dnsDomain", Str(values.dns_domain)},
                       {"podSubnets", List(values.pod_subnets)},
                       {"serviceSubnets", List(values.service_subnets)}})},
      {"token", Str(secrets.bootstrap_token)},
  });
  if (cp) {
    cluster.Set("secretboxEncryptionSecret", Str(secrets.secretbox_encryption_secret));
  }
  cluster.Set("ca", Pair(secrets.k8s, cp));
  if (cp) {
    cluster.Set("aggregatorCA", Pair(secrets.k8s_aggregator, true));
    cluster.Set("serviceAccount",
                Map({{"key", Str(Base64Encode(secrets.k8s_service_account_key))}}));
    Value audit_rule = Map({{"level", Str("Metadata")}});
    Value audit_rules = Value::Sequence();
    audit_rules.items.push_back(audit_rule);
    Value admission = Value::Sequence();
    admission.items.push_back(PodSecurityAdmission());
    cluster.Set("apiServer", Map({{"image", Str("registry.k8s.io/kube-apiserver:v" + k8s)},
                                  {"certSANs", List(sans)},
                                  {"disablePodSecurityPolicy", Bool(true)},
                                  {"admissionControl", admission},
                                  {"auditPolicy", Map({{"apiVersion", Str("audit.k8s.io/v1")},
                                                       {"kind", Str("Policy")},
                                                       {"rules", audit_rules}})}}));
    cluster.Set("controllerManager",
                Map({{"image", Str("registry.k8s.io/kube-controller-manager:v" + k8s)}}));
    cluster.Set("proxy", Map({{"image", Str("registry.k8s.io/kube-proxy:v" + k8s)}}));
    cluster.Set("scheduler", Map({{"image", Str("registry.k8s.io/kube-scheduler:v" + k8s)}}));
  }
  cluster.Set("discovery", Map({{"enabled", Bool(true)},
                                {"registries", Map({{"kubernetes", Map({{"disabled", Bool(true)}})},
                                                    {"service", Value::Map()}})}}));
  if (cp) {
    cluster.Set("etcd", Map({{"ca", Pair(secrets.etcd, true)}}));
    cluster.Set("extraManifests", Value::Sequence());
    cluster.Set("inlineManifests", Value::Sequence());
  }

  Value root = Map({{"version", Str("v1alpha1")},
                    {"debug", Bool(false)},
                    {"machine", machine},
                    {"cluster", cluster}});
  return EmitYaml(root);
}

}  // namespace ironboot::talos
