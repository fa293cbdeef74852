#pragma once
// talos/: validation of a rendered Talos machine config before it is
// published: the v1alpha1 document against the JSON schema of the config's own
// Talos minor version (schemas embedded in the binary, compiled once per
// version and kept), deprecated-but-accepted fields as warnings, and semantic
// checks the schema cannot express (https endpoint, control-plane addresses in
// certSANs, an install disk, a valid hostname).
//
// Messages name the field path and what was expected; they never quote a
// value of the config (configs hold keys and tokens), except the few
// non-secret fields the semantic checks are about (endpoint, hostname,
// addresses).

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "talos/json_schema.h"

namespace ironboot::talos {

// One finding. `path` is a JSON pointer into the document it concerns
// (e.g. "/machine/install/disk"); `schema_path` is set for schema findings.
struct ConfigIssue {
  std::size_t document = 0;  // 0-based index of the YAML document
  std::string path;
  std::string message;
  std::string schema_path;

  // "document 1: /machine/install: missing required field ... (schema #/...)"
  std::string ToString() const;
};

struct ValidationReport {
  std::string talos_minor;  // "v1.11": whose schema was used
  std::string schema_name;  // "config.schema.v1.11.json"
  std::vector<ConfigIssue> errors;
  std::vector<ConfigIssue> warnings;
  // Documents the schema check did not cover (kinds other than v1alpha1),
  // e.g. "document 2 (HostnameConfig): not checked against the schema".
  std::vector<std::string> not_checked;

  bool ok() const { return errors.empty(); }
  // Every error, then every warning, then what was not checked; one per line.
  std::string ToString() const;
};

struct MachineConfigExpectations {
  // Addresses (IPs or names) clients use to reach the control plane; on a
  // controlplane config each must appear in machine.certSANs.
  std::vector<std::string> control_plane_addresses;
};

// Validates a (possibly multi-document) machine config. `talos_version` is the
// Talos release the config is for: "v1.11.3", "1.12", "v1.14.0-rc.1"...; its
// minor selects the schema.
// Fails (kInvalid) when the YAML does not parse, there is no v1alpha1
// document, or no schema is embedded for that minor (the message lists those
// we have). Schema and semantic findings go into the report, not the error.
// Thread-safe.
Result<ValidationReport> ValidateMachineConfig(std::string_view yaml,
                                               std::string_view talos_version,
                                               const MachineConfigExpectations& expect = {});

// The compiled schema for a Talos version (compiled on first use, then kept).
Result<JsonSchema> TalosConfigSchema(std::string_view talos_version);

// The Talos minors we have a schema for, oldest first ("v1.11", ...).
std::vector<std::string> SupportedTalosMinors();

// Fields Talos still accepts although its schema for `talos_minor` omits
// them; reported as warnings. Each entry documents why (see the .cpp).
struct DeprecatedField {
  std::string_view minor;    // "v1.12", or "*" for every minor
  std::string_view pointer;  // instance path; "*" matches one array index
  std::string_view note;
};
std::span<const DeprecatedField> DeprecatedFields();

// Schemas embedded at build time (generated from talos/schemas/*.json).
struct EmbeddedSchema {
  std::string_view name;  // "config.schema.v1.11.json"
  std::string_view text;
};
std::span<const EmbeddedSchema> EmbeddedTalosSchemas();

}  // namespace ironboot::talos
