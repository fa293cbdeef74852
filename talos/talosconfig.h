#pragma once
// talos/: the talosctl client configuration (talosconfig) for a cluster: an
// admin client certificate signed by the cluster's os CA.

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/error.h"
#include "talos/secrets_bundle.h"

namespace ironboot::talos {

struct TalosconfigOptions {
  std::string context;                 // the cluster name
  std::vector<std::string> endpoints;  // control-plane addresses (at least one)
  std::vector<std::string> nodes;      // optional default nodes
  std::string role = "os:admin";       // os:admin, os:operator or os:reader
};

// The talosconfig YAML: `context: <name>`, `contexts: {<name>: {endpoints,
// [nodes,] ca, crt, key}}` with base64 PEM. The client certificate is new
// (Ed25519 like the os CA), Organization `role`, clientAuth, valid 1 year.
// Errors: no context name, no endpoints, an unknown role.
Result<std::string> GenerateTalosconfig(const SecretsBundle& secrets,
                                        const TalosconfigOptions& options, const Clock& clock);

}  // namespace ironboot::talos
