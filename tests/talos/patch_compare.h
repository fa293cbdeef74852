#pragma once
// Helpers for config-patch tests: reading Talos's test data from shared/,
// comparing configs semantically, and picking values out of a result.

#include <gtest/gtest.h>

#include <string>

#include "talos/yaml_value.h"

namespace ironboot::talos::testing {

// Reads IRONBOOT_SHARED_DIR/talos/testdata/<rel>.
std::string ReadTestdata(const std::string& rel);

// Drops null, "", [] and {} map values, recursively (a map emptied that way
// is dropped too). Talos re-encodes typed configs, so its expected files show
// zero values (`type: ""`, `certSANs: []`, `cluster: null`) and omit emptied
// ones; for Talos those are the same config as without them.
Value Normalize(const Value& v);

// Non-empty scalars in `v`: guards against comparing two empty things.
size_t CountLeaves(const Value& v);

// Equal document by document after Normalize(); key order ignored, list order
// and scalar values (numbers by value) not.
::testing::AssertionResult SemanticallyEqual(const std::string& actual_yaml,
                                             const std::string& expected_yaml);

// The index-th document of `yaml` (test failure if absent).
Value Doc(const std::string& yaml, size_t index = 0);
// Value at a dotted path ("machine.network.interfaces.0.interface"); nullptr if absent.
const Value* Get(const Value& root, const std::string& path);
// Scalar text at a path, "<missing>" if absent.
std::string Scalar(const Value& root, const std::string& path);
// Number of items or keys at a path (0 if absent).
size_t Size(const Value& root, const std::string& path);

}  // namespace ironboot::talos::testing
