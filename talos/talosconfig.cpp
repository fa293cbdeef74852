#include "talos/talosconfig.h"

#include "talos/yaml_value.h"

namespace ironboot::talos {

Result<std::string> GenerateTalosconfig(const SecretsBundle& secrets,
                                        const TalosconfigOptions& options, const Clock& clock) {
  if (options.context.empty()) {
    return Fail(ErrorCode::kInvalid, "talosconfig: context name is empty (want the cluster name)");
  }
  if (options.endpoints.empty()) {
    return Fail(ErrorCode::kInvalid,
                "talosconfig: no endpoints (want at least one control-plane address)");
  }
  for (const auto& e : options.endpoints) {
    if (e.empty()) {
      return Fail(ErrorCode::kInvalid, "talosconfig: an endpoint is empty");
    }
  }
  if (options.role != "os:admin" && options.role != "os:operator" && options.role != "os:reader") {
    return Fail(ErrorCode::kInvalid, "talosconfig: role \"" + options.role +
                                         "\" is not one of os:admin, os:operator, os:reader");
  }
  CertOptions cert;
  cert.organization = options.role;
  cert.validity = std::chrono::hours(24 * 365);
  cert.client_auth = true;
  auto client = IssueCertificate(secrets.os, cert, clock);
  if (!client) {
    return std::unexpected(client.error().Wrap("talosconfig: issue client certificate"));
  }
  auto list = [](const std::vector<std::string>& items) {
    Value seq = Value::Sequence();
    for (const auto& i : items) {
      seq.items.push_back(Value::String(i));
    }
    return seq;
  };
  Value ctx = Value::Map();
  ctx.Set("endpoints", list(options.endpoints));
  if (!options.nodes.empty()) {
    ctx.Set("nodes", list(options.nodes));
  }
  ctx.Set("ca", Value::String(Base64Encode(secrets.os.crt)));
  ctx.Set("crt", Value::String(Base64Encode(client->crt)));
  ctx.Set("key", Value::String(Base64Encode(client->key)));
  Value contexts = Value::Map();
  contexts.Set(options.context, ctx);
  Value root = Value::Map();
  root.Set("context", Value::String(options.context));
  root.Set("contexts", contexts);
  return EmitYaml(root);
}

}  // namespace ironboot::talos
