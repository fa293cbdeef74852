#pragma once
// talos/: Talos machine-config patching with Talos's own semantics
// (pkg/machinery/config/configpatcher): a patch is tried as a strategic merge
// patch, else as an RFC 6902 JSON patch (JSON or YAML).

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "talos/json_patch.h"
#include "talos/yaml_value.h"

namespace ironboot::talos {

// One patch: its text and where it came from (file name) for messages.
struct Patch {
  std::string source;  // e.g. "patches/all.yaml" or "Machine cp1 spec.patches[0]"
  std::string content;
};

// Applies `patches` in order to `config` (one or more YAML documents separated
// by "---") and returns the patched config as YAML. Errors (kInvalid) name the
// patch source and what is wrong; JSON patches on a multi-document config fail
// with "JSON6902 patches are not supported for multi-document machine configuration".
Result<std::string> ApplyPatches(std::string_view config, const std::vector<Patch>& patches);

// A patch parsed once, to be applied to many configs (ApplyPatches() is
// ParsePatch() then ApplyParsedPatch() for each patch in turn).
struct ParsedPatch {
  enum class Kind { kEmpty, kJson, kStrategic };
  std::string source;
  Kind kind = Kind::kEmpty;
  std::vector<JsonPatchOp> ops;  // kJson
  std::vector<Value> docs;       // kStrategic
};

// Parses `patch` and checks its shape; errors as ApplyPatches() reports them.
Result<ParsedPatch> ParsePatch(const Patch& patch);

// Applies one parsed patch to `config` (parsed documents) in place; on error
// `config` may be partly patched.
Result<void> ApplyParsedPatch(std::vector<Value>& config, const ParsedPatch& patch);
// Same, naming `source` in errors instead of patch.source (a patch parsed once
// for many places that hold the same text).
Result<void> ApplyParsedPatch(std::vector<Value>& config, const ParsedPatch& patch,
                              std::string_view source);

}  // namespace ironboot::talos
