#pragma once
// talos/: semantic comparison of two machine configs, the basis of drift
// detection (a machine is in sync when its running config and the one
// rendered from git have no difference) and of the apply-mode decision
// (apply_mode.h). Configs are parsed, their documents matched as Talos matches
// them (apiVersion, kind, name) and compared as trees: key order, comments,
// quoting style and indentation never make a difference.
//
// Pure functions; nothing here throws. Field paths never carry values, so they
// are safe to log (configs hold keys and tokens).

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "talos/yaml_value.h"

namespace ironboot::talos {

// A document's identity inside a multi-document config. The v1alpha1 document
// (version/machine/cluster) has no apiVersion or kind; the others (e.g.
// HostnameConfig, LinkConfig) have both, and a name when their kind is named.
struct DocumentKey {
  std::string api_version;  // "" for the v1alpha1 document
  std::string kind;         // "" for the v1alpha1 document
  std::string name;         // "" when the document has none

  bool IsV1Alpha1() const { return kind.empty(); }
  // "v1alpha1" for the v1alpha1 document, else "Kind" or "Kind/name"; the
  // apiVersion is prefixed ("v1alpha2/Kind") only when it is not v1alpha1.
  std::string String() const;
  friend bool operator==(const DocumentKey&, const DocumentKey&) = default;
};

struct ConfigDocument {
  DocumentKey key;
  Value body;
};

// A machine config split into its documents, in source order; keys are unique.
struct MachineConfigDocuments {
  std::vector<ConfigDocument> documents;

  // nullptr when the config has no such document.
  const Value* Find(const DocumentKey& key) const;
  const Value* V1Alpha1() const { return Find(DocumentKey{}); }
};

// Parses a (possibly multi-document, "---"-separated) machine config. `which`
// names the config in every message, e.g. "desired config" gives
// "desired config:3:7: invalid YAML: ...". Fails (kInvalid) on a YAML error,
// a document that is not a map, a document with only one of apiVersion and
// kind, and two documents with the same key (Talos refuses those too).
Result<MachineConfigDocuments> ParseMachineConfig(std::string_view text, std::string_view which);

// How a field or document differs, going from the running to the desired config.
enum class ChangeKind {
  kAdded,    // only in the desired config
  kRemoved,  // only in the running config
  kChanged,  // in both, with different values
};
std::string_view ChangeKindName(ChangeKind kind);  // "added", "removed", "changed"

// One differing field inside a document. `path` is dotted map keys with list
// indexes in brackets, e.g. "machine.network.interfaces[0].addresses[1]"; a key
// that holds anything but letters, digits, '_', '-', '/' and '$' is quoted:
// `machine.sysctls["net.ipv4.ip_forward"]`.
struct FieldChange {
  std::string path;
  ChangeKind kind = ChangeKind::kChanged;
  friend bool operator==(const FieldChange&, const FieldChange&) = default;
};

// The deepest paths where `running` and `desired` differ; empty when equal.
// Maps are compared key by key (order ignored): keys of `desired` in its
// order, then keys only `running` has. Lists are compared index by index;
// extra items are added/removed at their index. Scalars compare as
// yaml_value.h's Equal() does: numbers by value (`0x10` equals `16`), other
// scalars by type and text, so `1` and `"1"` differ, and `key: null` differs
// from an absent key. Those strict cases err towards reporting a change.
std::vector<FieldChange> DiffDocument(const Value& running, const Value& desired);

// One document that differs. `fields` is set for kChanged only.
struct DocumentChange {
  DocumentKey key;
  ChangeKind kind = ChangeKind::kChanged;
  std::vector<FieldChange> fields;
};

// Every difference between two configs, document by document: changed and
// added documents in the desired config's order, then removed ones in the
// running config's order.
struct ConfigDiff {
  std::vector<DocumentChange> documents;

  bool Empty() const { return documents.empty(); }
  // One line per difference, for `plan` and logs:
  //   "v1alpha1: machine.kubelet.image changed", "HostnameConfig added".
  std::vector<std::string> Lines() const;
};

ConfigDiff DiffConfigs(const MachineConfigDocuments& running,
                       const MachineConfigDocuments& desired);

// Parses both texts (errors name "running config" or "desired config") and
// diffs them.
Result<ConfigDiff> DiffConfigs(std::string_view running, std::string_view desired);

}  // namespace ironboot::talos
