#include "talos/config_patch.h"

#include "talos/json_patch.h"
#include "talos/strategic_merge.h"
#include "talos/yaml_value.h"

namespace ironboot::talos {

Result<ParsedPatch> ParsePatch(const Patch& patch) {
  ParsedPatch parsed;
  parsed.source = patch.source;
  auto patch_docs = ParseYamlDocuments(patch.content, patch.source);
  if (!patch_docs) {
    return std::unexpected(patch_docs.error());
  }
  if (patch_docs->empty()) {
    return parsed;  // an empty patch changes nothing
  }
  // A single list is an RFC 6902 patch; maps are a strategic merge patch.
  if (patch_docs->size() == 1 && patch_docs->front().IsSequence()) {
    auto ops = ParseJsonPatch(patch_docs->front(), patch.source);
    if (!ops) {
      return std::unexpected(ops.error());
    }
    parsed.kind = ParsedPatch::Kind::kJson;
    parsed.ops = std::move(*ops);
    return parsed;
  }
  for (const auto& d : *patch_docs) {
    if (!d.IsMap()) {
      return Fail(ErrorCode::kInvalid,
                  patch.source + (d.line > 0 ? ":" + std::to_string(d.line) : "") +
                      ": not a config patch: want a strategic merge patch (YAML maps, one per "
                      "document) or a JSON patch (a list of operations)");
    }
  }
  parsed.kind = ParsedPatch::Kind::kStrategic;
  parsed.docs = std::move(*patch_docs);
  return parsed;
}

Result<void> ApplyParsedPatch(std::vector<Value>& config, const ParsedPatch& patch) {
  return ApplyParsedPatch(config, patch, patch.source);
}

Result<void> ApplyParsedPatch(std::vector<Value>& config, const ParsedPatch& patch,
                              std::string_view source) {
  switch (patch.kind) {
    case ParsedPatch::Kind::kEmpty:
      return {};
    case ParsedPatch::Kind::kJson:
      if (config.size() != 1) {
        return Fail(ErrorCode::kInvalid,
                    std::string(source) +
                        ": JSON6902 patches are not supported for multi-document machine "
                        "configuration");
      }
      return ApplyJsonPatch(config.front(), patch.ops, source);
    case ParsedPatch::Kind::kStrategic:
      return StrategicMerge(config, patch.docs, source);
  }
  return {};
}

Result<std::string> ApplyPatches(std::string_view config, const std::vector<Patch>& patches) {
  auto docs = ParseYamlDocuments(config, "machine config");
  if (!docs) {
    return std::unexpected(docs.error());
  }
  for (const auto& patch : patches) {
    auto parsed = ParsePatch(patch);
    if (!parsed) {
      return std::unexpected(parsed.error());
    }
    if (auto r = ApplyParsedPatch(*docs, *parsed); !r) {
      return std::unexpected(r.error());
    }
  }
  return EmitYaml(*docs);
}

}  // namespace ironboot::talos
