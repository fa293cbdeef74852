#include "talos/config_patch.h"

#include "talos/json_patch.h"
#include "talos/strategic_merge.h"
#include "talos/yaml_value.h"

namespace ironboot::talos {

Result<std::string> ApplyPatches(std::string_view config, const std::vector<Patch>& patches) {
  auto docs = ParseYamlDocuments(config, "machine config");
  if (!docs) {
    return std::unexpected(docs.error());
  }
  for (const auto& patch : patches) {
    auto patch_docs = ParseYamlDocuments(patch.content, patch.source);
    if (!patch_docs) {
      return std::unexpected(patch_docs.error());
    }
    if (patch_docs->empty()) {
      continue;  // an empty patch changes nothing
    }
    // A single list is an RFC 6902 patch; maps are a strategic merge patch.
    if (patch_docs->size() == 1 && patch_docs->front().IsSequence()) {
      auto ops = ParseJsonPatch(patch_docs->front(), patch.source);
      if (!ops) {
        return std::unexpected(ops.error());
      }
      if (docs->size() != 1) {
        return Fail(ErrorCode::kInvalid,
                    patch.source +
                        ": JSON6902 patches are not supported for multi-document machine "
                        "configuration");
      }
      if (auto r = ApplyJsonPatch(docs->front(), *ops, patch.source); !r) {
        return std::unexpected(r.error());
      }
      continue;
    }
    for (const auto& d : *patch_docs) {
      if (!d.IsMap()) {
        return Fail(ErrorCode::kInvalid,
                    patch.source + (d.line > 0 ? ":" + std::to_string(d.line) : "") +
                        ": not a config patch: want a strategic merge patch (YAML maps, one per "
                        "document) or a JSON patch (a list of operations)");
      }
    }
    if (auto r = StrategicMerge(*docs, std::move(*patch_docs), patch.source); !r) {
      return std::unexpected(r.error());
    }
  }
  return EmitYaml(*docs);
}

}  // namespace ironboot::talos
