#pragma once
// talos/: RFC 6902 JSON patches (add, remove, replace, move, copy, test) with
// RFC 6901 JSON Pointers ("-" appends, ~0 and ~1 escapes), applied to one
// YAML document held as a Value.

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "talos/yaml_value.h"

namespace ironboot::talos {

struct JsonPatchOp {
  std::string op;    // add, remove, replace, move, copy, test
  std::string path;  // JSON Pointer
  std::string from;  // move, copy
  Value value;       // add, replace, test
  int line = 0;      // where the operation is in its patch file
};

// Reads a list of operations (parsed from JSON or YAML). Errors name the
// source, the operation's line and what is missing or wrong.
Result<std::vector<JsonPatchOp>> ParseJsonPatch(const Value& list, std::string_view source);

// Applies `ops` in order to `doc`; on error `doc` may be partly patched.
// Messages name the source, operation and pointer, never the values (a
// machine config holds secrets).
Result<void> ApplyJsonPatch(Value& doc, const std::vector<JsonPatchOp>& ops,
                            std::string_view source);

}  // namespace ironboot::talos
