#pragma once
// talos/: Talos's strategic merge of machine-config documents
// (pkg/machinery/config/merge and configpatcher/strategic.go semantics):
// documents match by apiVersion/kind/name, scalars overwrite unless the patch
// holds a zero value (false always applies), maps merge, lists concatenate
// except the few Talos merges by key or replaces whole, and `$patch: delete`
// removes keys, list items or whole documents.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "talos/yaml_value.h"

namespace ironboot::talos {

// One `$patch: delete` found in a patch document.
struct DeleteSelector {
  std::string doc_id;                // document identity, see DocumentId()
  std::vector<std::string> path;     // map keys; a list item is "[i]"
  std::string item_key, item_value;  // for a list item: the item's first other key/value
  int line = 0;                      // where the directive is in the patch
  std::string PathString() const;    // "machine.network.interfaces.[0]"
};

// "apiVersion/kind[/name]"; the v1alpha1 document (no kind) is "/v1alpha1".
// Fails when a document has only one of apiVersion and kind.
Result<std::string> DocumentId(const Value& doc, std::string_view source);

// One patch document after its `$patch: delete` directives were taken out:
// the deletes apply to the matching config document first, then `doc` (if
// anything is left of it) merges into it or is appended.
struct PatchStep {
  std::string doc_id;
  std::vector<DeleteSelector> deletes;
  std::optional<Value> doc;
};

// Removes every `$patch: delete` from the patch documents (a map or list left
// empty by that goes too, as does a document left with nothing but
// version/kind/name) and returns the selectors, document by document.
Result<std::vector<PatchStep>> StripDeletes(std::vector<Value> patch_docs, std::string_view source);

// Applies a strategic merge patch (already parsed) to `config` in place; on
// error `config` may be partly patched. Deletes aimed at a document the config
// lacks are ignored (as Talos does); a delete under a path that does not exist
// fails with "lookup failed"; a list-item delete removes every matching item
// (Talos removes the first only).
Result<void> StrategicMerge(std::vector<Value>& config, std::vector<Value> patch_docs,
                            std::string_view source);

}  // namespace ironboot::talos
